"""Secrets kept as files in the data dir: created once, readable by the owner only (0600)."""

import os
from collections.abc import Callable
from pathlib import Path


def read_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The file's bytes; on first use `make()` is written with 0600 permissions, never wider."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    content = make()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first; use theirs
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    return content
