"""Find and kill a whole process tree.

Cancel and timeout must leave no process behind, including children a script started
in a new session or detached. The tree is frozen first (``SIGSTOP``), so nothing in it can
fork while it is being listed, then every member is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (empty if it is gone)."""
    if sys.platform.startswith("linux"):
        found: list[int] = []
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            return found
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    found.extend(int(p) for p in f.read().split())
            except OSError:
                continue
        return found
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children()]
    except psutil.Error:
        return []


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, parents before children."""
    out: list[int] = []
    frontier = [pid]
    while frontier:
        nxt: list[int] = []
        for parent in frontier:
            for child in children(parent):
                if child not in out:
                    out.append(child)
                    nxt.append(child)
        frontier = nxt
    return out


def kill_tree(pid: int, *, group: bool = True) -> list[int]:
    """Kill ``pid``, its process group (if ``group``) and all its descendants.

    Returns the pids that were signalled.
    """
    frozen: list[int] = []
    for target in [pid, *descendants(pid)]:
        if _signal(target, signal.SIGSTOP):
            frozen.append(target)
    # processes forked just before their parent stopped show up now
    for target in descendants(pid):
        if target not in frozen and _signal(target, signal.SIGSTOP):
            frozen.append(target)
    if group:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
    for target in frozen:
        _signal(target, signal.SIGKILL)
    return frozen


def _signal(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def kill_descendants(pid: int, keep: frozenset[int] = frozenset()) -> list[int]:
    """Kill every process below ``pid`` (frozen first), but not ``pid`` itself, nor the
    processes in ``keep`` and theirs: what a worker does to clean up after a script, or
    before it ends itself."""
    if pid == os.getpid() and not _has_children():
        return []  # the usual case, found out with one system call
    spared = set(keep)
    for kept in keep:
        spared.update(descendants(kept))
    frozen: list[int] = []
    for _ in range(2):  # a second pass finds what was forked while the first one ran
        for target in descendants(pid):
            if target not in frozen and target not in spared and _signal(target, signal.SIGSTOP):
                frozen.append(target)
    for target in frozen:
        _signal(target, signal.SIGKILL)
    return frozen


def _has_children() -> bool:
    """Does this process have children (running, or exited and not yet waited for)?"""
    if not hasattr(os, "waitid"):  # pragma: no cover - not on this platform
        return True
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True
