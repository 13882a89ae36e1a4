"""The running job, as seen from inside a script.

A script imports this module to report progress, learn its job id and core count, get a
process pool sized to its cores, and write log lines::

    from jupyter_jobserver import context

    def fit(data, steps: int = 100):
        for i in range(steps):
            ...
            context.progress((i + 1) / steps, f"step {i + 1} of {steps}")

Outside a job every function still works: ``job_id()`` is ``None``, ``progress`` does
nothing, ``log`` writes to stderr. A file script in any language gets the same through
its environment: ``JUPYTER_JOBSERVER_JOB_ID``, ``JUPYTER_JOBSERVER_CORES`` and, for
progress, a line ``<fraction> <message>`` (``- <message>`` for a message alone) written to
the file descriptor named by ``JUPYTER_JOBSERVER_PROGRESS_FD``; this module does that for
Python file scripts, folding reports as it does in a worker.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as _dt
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

ENV_JOB_ID = "JUPYTER_JOBSERVER_JOB_ID"
ENV_CORES = "JUPYTER_JOBSERVER_CORES"
ENV_PROGRESS_FD = "JUPYTER_JOBSERVER_PROGRESS_FD"

#: progress reports closer together than this are folded into the next one
PROGRESS_INTERVAL = 0.1


class Folding:
    """Progress reports folded to at most one per ``PROGRESS_INTERVAL``; the latest one
    always goes out: with the next report, when ``flush`` is called (a worker's flusher
    thread does), or, with ``timed``, by a timer of its own."""

    def __init__(self, report: Callable[[dict[str, Any]], None], timed: bool = False) -> None:
        self.report = report
        self.timed = timed
        self.latest: dict[str, Any] | None = None
        self.sent_at = 0.0
        self.pending = False
        self._timer: threading.Timer | None = None
        self._closed = False
        # reports go out one at a time, so the latest is always the last to arrive
        self._lock = threading.Lock()

    def put(self, update: dict[str, Any]) -> None:
        with self._lock:
            self.latest = update
            now = time.monotonic()
            if now - self.sent_at >= PROGRESS_INTERVAL:
                self.sent_at = now
                self.pending = False
                self.report(update)
                return
            self.pending = True
            timer_needed = self.timed and not self._closed
            if timer_needed and (self._timer is None or not self._timer.is_alive()):
                self._timer = threading.Timer(PROGRESS_INTERVAL, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self, now: bool = False) -> None:
        """Send a folded report once its interval has passed (or at once, with ``now``)."""
        with self._lock:
            due = now or time.monotonic() - self.sent_at >= PROGRESS_INTERVAL
            if self.pending and due and self.latest is not None:
                self.pending = False
                self.sent_at = time.monotonic()
                self.report(self.latest)

    def close(self) -> None:
        """Send what is folded and stop the timer (it must not outlive the job)."""
        self._closed = True
        timer = self._timer
        if timer is not None:
            timer.cancel()
            timer.join()
        self.flush(now=True)


class _JobState:
    """What the worker tells this module about the job it is running."""

    def __init__(self) -> None:
        self.job_id: str | None = None
        self.cores = 1
        self.folding: Folding | None = None
        self.pool: Executor | None = None

    def begin(self, job_id: str, cores: int, report: Callable[[dict[str, Any]], None]) -> None:
        self.__init__()  # type: ignore[misc]
        self.job_id, self.cores, self.folding = job_id, cores, Folding(report)

    def flush(self) -> None:
        """The worker's flusher thread calls this, so that a last report before a long
        pause is not held back."""
        if self.folding is not None:
            self.folding.flush()

    def report_to_fd(self, fd: int) -> None:
        """In a file script: report as lines on the descriptor the worker reads, folded
        as in a worker (the last report goes out when the script exits)."""

        def write(update: dict[str, Any]) -> None:
            fraction = "-" if update["fraction"] is None else repr(update["fraction"])
            line = f"{fraction} {update['message'] or ''}".rstrip().replace("\n", " ")
            with contextlib.suppress(OSError):
                os.write(fd, (line + "\n").encode())

        self.folding = Folding(write, timed=True)
        atexit.register(self.folding.close)

    def end(self) -> dict[str, Any] | None:
        """Forget the job; return its last progress so the worker can store it."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
        latest = self.folding.latest if self.folding is not None else None
        self.__init__()  # type: ignore[misc]
        return latest


_state = _JobState()


def job_id() -> str | None:
    """The id of the job this code runs in, or ``None`` outside a job."""
    return _state.job_id or os.environ.get(ENV_JOB_ID)


def cores() -> int:
    """How many cores this job may use (what the script declared)."""
    if _state.job_id:
        return _state.cores
    try:
        return max(1, int(os.environ.get(ENV_CORES, "1")))
    except ValueError:
        return 1


def pool() -> Executor:
    """A process pool with one process per core of this job, shut down when it ends.

    Functions given to it must be importable (defined at module level), as with any
    ``ProcessPoolExecutor``.
    """
    if _state.pool is None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        _state.pool = ProcessPoolExecutor(
            max_workers=cores(), mp_context=multiprocessing.get_context("spawn")
        )
    return _state.pool


def progress(fraction: float | None = None, message: str | None = None) -> None:
    """Report how far the job is: ``fraction`` between 0 and 1, and/or a short message.

    Cheap enough to call in a tight loop: reports closer than 0.1 s together are folded
    (100 % too), and the last one always reaches the job record.
    """
    if fraction is not None:
        fraction = float(fraction)
        fraction = None if math.isnan(fraction) else min(1.0, max(0.0, fraction))
    update = {"fraction": fraction, "message": None if message is None else str(message)[:500]}
    if _state.folding is None and os.environ.get(ENV_PROGRESS_FD):
        _state.report_to_fd(int(os.environ[ENV_PROGRESS_FD]))
    if _state.folding is not None:
        _state.folding.put(update)


def log(message: str) -> None:
    """Write a time-stamped line to the job's stderr."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)
