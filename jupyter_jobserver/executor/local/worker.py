"""A warm worker process: runs one job at a time for the local executor.

The server starts a few of these once and reuses them, so a small job costs a message
round trip rather than an interpreter start-up. A worker

* talks to the server over a socket (``multiprocessing.connection`` framing; the
  messages are in :mod:`.protocol`);
* dies with the server: a lifeline pipe whose far end only the server holds reaches
  end-of-file when the server goes, and the worker then kills its process group;
* runs each job with :class:`~jupyter_jobserver.runtime.job.JobRunner`, so a job's
  failure never escapes; only a hard crash (``os._exit``, a segfault, the OOM killer)
  ends the worker, and the server then fails that one job and starts a fresh worker.

It is started as ``python -m jupyter_jobserver.executor.local.worker --control FD
--lifeline FD`` and imports nothing heavy of its own: what a job needs, the job imports.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import importlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

from ...runtime.introspect import describe_reference, remember_source, warm_provenance
from ...runtime.job import LIBC, JobRunner, flush_c_stdio
from ...runtime.output import FOLDER, OUTPUT
from ...runtime.proctree import kill_descendants
from . import protocol


class Worker:
    """The worker's main loop."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._send_lock = threading.Lock()
        self.runner = JobRunner(self._send_progress)

    def send(self, message: dict[str, Any]) -> None:
        with self._send_lock:
            self.conn.send(message)

    def _send_progress(self, job_id: str, update: dict[str, Any]) -> None:
        self.send(protocol.progress(job_id, update))

    def serve(self, preload: list[str]) -> None:
        for module in preload:
            try:
                remember_source(importlib.import_module(module))
            except Exception as exc:
                print(f"jobserver worker: could not preload {module}: {exc}", file=sys.stderr)
        if preload:
            warm_provenance()  # the first job's provenance then costs microseconds
        self.send(protocol.ready(os.getpid()))
        try:
            self._serve()
        finally:
            OUTPUT.discard()
            FOLDER.discard()

    def _serve(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                return
            op = message.get("op")
            if op == protocol.RUN:
                done = self.runner.run(message["task"])
                self.send(done)
                if done.get("retire"):
                    # threads the job left running could write into the next job's output
                    # or progress: this worker ends (at once, whatever they do) and a
                    # fresh one takes its place
                    flush_c_stdio()
                    OUTPUT.discard()
                    FOLDER.discard()
                    os._exit(0)
            elif op == protocol.DESCRIBE:
                self.send(protocol.described(self.describe(message["scripts"])))
            elif op == protocol.EXIT:
                return

    def describe(self, scripts: dict[str, str]) -> dict[str, Any]:
        """Describe function scripts; a script that cannot be loaded gets an ``error``."""
        out: dict[str, Any] = {}
        with _quiet():
            for name, reference in scripts.items():
                try:
                    out[name] = describe_reference(name, reference)
                except BaseException as exc:
                    out[name] = {"error": f"{type(exc).__name__}: {exc}"}
        return out


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence output while describing scripts (imports may print)."""
    with (
        open(os.devnull, "w") as devnull,
        contextlib.redirect_stdout(devnull),
        contextlib.redirect_stderr(devnull),
    ):
        yield


def _watch_lifeline(fd: int) -> None:
    """Kill this worker's process group when the server is gone."""

    def watch() -> None:
        with contextlib.suppress(OSError):
            while os.read(fd, 1):
                pass
        # everything this worker started goes too, even in sessions of their own
        kill_descendants(os.getpid())
        with contextlib.suppress(OSError):
            os.killpg(os.getpgid(0), signal.SIGKILL)
        os._exit(1)

    threading.Thread(target=watch, name="jobserver-lifeline", daemon=True).start()


def _become_subreaper() -> None:
    """Adopt orphaned descendants (Linux), so cancelling a job finds processes that a
    script detached with a double fork."""
    if sys.platform.startswith("linux") and LIBC is not None:
        with contextlib.suppress(Exception):
            pr_set_child_subreaper = 36
            LIBC.prctl(pr_set_child_subreaper, 1, 0, 0, 0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jupyter_jobserver.executor.local.worker")
    parser.add_argument("--control", type=int, required=True)
    parser.add_argument("--lifeline", type=int, required=True)
    parser.add_argument("--preload", action="append", default=[])
    parser.add_argument("--memory-limit", type=int, default=0)
    args = parser.parse_args(argv)
    _watch_lifeline(args.lifeline)
    _become_subreaper()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the server's terminal
    if args.memory_limit:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (args.memory_limit, args.memory_limit))
    faulthandler.enable(file=sys.stderr, all_threads=True)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - a job asking for input gets EOF
    Worker(Connection(args.control)).serve(args.preload)


if __name__ == "__main__":
    main()
