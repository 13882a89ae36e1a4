"""The reaper: a small parent for each worker, so that a job's processes die with it.

When a worker dies hard (SIGKILL, the out-of-memory killer) nothing in it runs any
more: the processes its job started would be re-parented to PID 1 and live on, however
they were started (in their own session too). So each worker runs under a reaper that
is a *child subreaper* (``PR_SET_CHILD_SUBREAPER``, Linux): every orphan of the worker
is re-parented to the reaper instead, which kills them all once the worker has ended
and then exits with the worker's own status (the pool reports it as the worker's).
The worker gets ``PR_SET_PDEATHSIG``, so that it dies with the reaper too.

Started as ``python -m jupyter_jobserver.executor.local.reaper WORKER-ARGV...``; it
imports only the standard library and its process-tree helpers. Elsewhere than Linux
it simply becomes the worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys

from ...runtime.proctree import kill_descendants

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def main(argv: list[str]) -> None:
    if not sys.platform.startswith("linux") or not _prctl(PR_SET_CHILD_SUBREAPER, 1):
        os.execv(argv[0], argv)  # no subreaper here: the worker runs as before
    # SIGTERM (a stop) goes to the worker; the reaper ends when it does
    worker = os.fork()
    if worker == 0:
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the reaper was gone already
            os._exit(1)
        os.execv(argv[0], argv)
    signal.signal(signal.SIGTERM, lambda *_: _forward(worker, signal.SIGTERM))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # the worker holds the server's sockets and pipes; the reaper lets go of them, so
    # that the server sees the worker's end the moment the worker ends
    os.closerange(3, _max_fd())
    status = 0
    while True:
        try:
            pid, waited = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == worker:
            status = waited
            break
        # an orphan of the job's that ended by itself: reaped, nothing more
    kill_descendants(os.getpid())  # what the job left behind, re-parented to the reaper
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        with contextlib.suppress(OSError, ValueError):  # SIGKILL has no handler to reset
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)  # ended as the worker ended, for the pool to report
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def _forward(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (ValueError, OSError):
        return 1024


if __name__ == "__main__":
    main(sys.argv[1:])
