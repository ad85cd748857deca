"""Random bytes for ids from the operating system's generator, fetched a few KiB at a time.

`os.urandom` is one system call that releases the GIL; on a busy event loop the thread then waits for a
worker thread to hand the GIL back, which made a uuid4 per request one of the larger costs of a search.
The pool is refilled after a fork, so processes never share bytes.
"""

import os
import threading

POOL_BYTES = 4096

_lock = threading.Lock()
_pool = b""
_offset = 0
_pid = 0


def random_bytes(n: int) -> bytes:
    """`n` (at most POOL_BYTES) bytes from os.urandom, as unpredictable as calling it directly."""
    global _pool, _offset, _pid
    with _lock:
        if _offset + n > len(_pool) or _pid != os.getpid():
            _pool, _offset, _pid = os.urandom(max(POOL_BYTES, n)), 0, os.getpid()
        taken = _pool[_offset : _offset + n]
        _offset += n
        return taken


def random_hex(nbytes: int) -> str:
    return random_bytes(nbytes).hex()
