"""Running work on an aiosqlite connection's own thread, and the cross-process write lock.

aiosqlite sends each statement to its thread separately; a write made of five statements then costs five
thread hand-offs while the write lock is held. `run_on_connection` sends one function that runs them all.
aiosqlite has no public call for this, so it uses `Connection._execute` (pinned aiosqlite range in
pyproject.toml; the whole store suite fails if that changes).
"""

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import aiosqlite

T = TypeVar("T")


async def run_on_connection(conn: aiosqlite.Connection, fn: Callable[..., T], *args: object) -> T:
    """Runs fn(sqlite3_connection, *args) on the connection's thread, in one hand-off."""
    return await conn._execute(fn, conn._conn, *args)


class WriteLock:
    """An flock on a file beside the database: writers of several server processes queue on it and are
    woken as soon as it is free, instead of polling through SQLite's sleeping busy handler."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def acquire(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    async def acquire_async(self) -> None:
        """Takes the lock when it is free. While another process holds it, a worker thread waits until
        it is released (the event loop runs on) and the loop tries again. The thread does not keep the
        lock for the loop: held until this process's busy loop came round to its batch, it kept the
        other processes' writers waiting for nothing (a quarter of the time the lock was held)."""
        while not self.try_acquire():
            await asyncio.to_thread(self._wait_until_free)

    def _wait_until_free(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def release(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


def begin(db: sqlite3.Connection, lock: WriteLock) -> None:
    lock.acquire()
    try:
        db.execute("BEGIN IMMEDIATE")
    except BaseException:
        lock.release()
        raise


def commit(db: sqlite3.Connection, lock: WriteLock) -> None:
    try:
        db.execute("COMMIT")
    finally:
        lock.release()


def rollback(db: sqlite3.Connection, lock: WriteLock) -> None:
    try:
        if db.in_transaction:
            db.execute("ROLLBACK")
    finally:
        lock.release()
