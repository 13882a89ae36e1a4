"""The lock that keeps a store that only one server may use to that one server."""

from __future__ import annotations

import fcntl
import os
from typing import IO


def hold_lock(path: str, what: str) -> IO[str]:
    """Take the lock file at ``path`` for this process (released when it exits, however it
    ends), or raise ``RuntimeError`` naming the process that holds it. ``what`` says what
    is locked, for that message."""
    lock = open(path, "a+", encoding="utf-8")  # noqa: SIM115  # held open while the server runs
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise RuntimeError(f"another job server ({holder}) uses {what}") from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()}")
    lock.flush()
    return lock
