"""Running one job in this process: the part of a worker that every executor shares.

:class:`JobRunner` captures the job's stdout and stderr into its folder at the file
descriptor level (so output from C extensions and child processes is kept too), runs the
job's process kind, turns the return value into JSON, and undoes what the job changed in
the process (working folder, environment, signal handlers, import path), so the next job
starts clean. A job's failure never escapes: an exception becomes the job's ``error``.

Imported by worker processes: standard library only, what a job needs, the job imports.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from .. import context, serialize
from ..processes import PROCESSES, get_process
from ..vocabulary import error_record
from .failure import ReportedFailure
from .files import RUNNER_FILES, remove, scan, total_size
from .introspect import environment
from .output import FOLDER, OUTPUT
from .proctree import kill_descendants

#: a larger result is handed over as a file, so messages to the server stay small
INLINE_RESULT_LIMIT = 256 << 10

#: how often buffered job output is flushed to its file while the job runs (seconds)
FLUSH_INTERVAL = 0.1

#: frames of these files are left out of a job's traceback: they are the runner's, not
#: the script's
_OWN_FILES = {
    os.path.abspath(__file__),
    *(
        os.path.abspath(sys.modules[type(kind).__module__].__file__ or "")
        for kind in PROCESSES.values()
    ),
}


class JobRunner:
    """Runs jobs one at a time in this process; see the module docstring."""

    def __init__(self, report_progress: Callable[[str, dict[str, Any]], None]) -> None:
        self._report = report_progress
        self._provenance: dict[str, Any] = {}
        self._environment = environment()
        self._saved_fds = (os.dup(1), os.dup(2))
        self._flusher = _Flusher()
        self._cwd = os.getcwd()  # every job ends back here (asking each time costs more)

    def run(self, task: dict[str, Any]) -> dict[str, Any]:
        """Run one job and return the ``done`` message for the server."""
        job_id = task["job_id"]
        job_dir = task["job_dir"]
        fresh = FOLDER.make(job_dir)
        task = _with_local_data(task, job_dir)
        done: dict[str, Any] = {"type": "done", "job_id": job_id, "exit_code": None}
        context._state.begin(job_id, int(task.get("cores", 1)), self._progress(job_id))
        threads = set(threading.enumerate())
        environ = _environ_snapshot()
        interpreter = _InterpreterState()
        cwd = self._cwd
        pid = os.getpid()
        try:
            with self._captured(job_dir, fresh):
                os.chdir(job_dir)
                try:
                    process = get_process(task["process"])
                    done["provenance"] = {
                        **self._environment,
                        **process.provenance(task, self._provenance),
                    }
                    value = process.run(task, done)
                    if os.getpid() != pid:  # a child the job forked: its value is not the job's
                        os._exit(0)
                    result = serialize.dumps(value)
                    limit = task.get("max_result_bytes") or 0
                    if limit and len(result) > limit:
                        raise ResultTooLarge(
                            f"the result is {len(result):,} bytes of JSON, over the limit of "
                            f"{limit:,}; write large results to a file instead"
                        )
                    if len(result) > INLINE_RESULT_LIMIT:
                        path = os.path.join(job_dir, "result.json")
                        with open(path, "w", encoding="utf-8") as f:
                            f.write(result)
                        done.update(status="succeeded", result_file=path, error=None)
                    else:
                        done.update(status="succeeded", result=result, error=None)
                except BaseException as exc:
                    if not isinstance(exc, ReportedFailure):
                        print(_format_traceback(exc), file=sys.stderr, end="")
                    done.update(status="failed", result=None, error=_error(exc))
        finally:
            if os.getpid() != pid:  # the job forked, and this is the child returning
                os._exit(0)
            done["progress"] = context._state.end()
            # nothing a job started outlives it (a kernel started for the next job is
            # the process kind's, not this job's)
            spare = frozenset().union(*(k.spare_processes() for k in PROCESSES.values()))
            kill_descendants(os.getpid(), spare)
            os.chdir(cwd)
            _restore_environ(environ)  # a job's environment changes stay with that job
            interpreter.restore()
            _reap_orphans()
        _collect_files(task, job_dir, done)
        leftover = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
        if leftover:
            done["retire"] = [t.name for t in leftover]
        return done

    def _progress(self, job_id: str) -> Callable[[dict[str, Any]], None]:
        def report(update: dict[str, Any]) -> None:
            self._report(job_id, update)

        return report

    @contextlib.contextmanager
    def _captured(self, job_dir: str, fresh: bool) -> Iterator[None]:
        """Point fds 1 and 2, and ``sys.stdout``/``sys.stderr``, at the job's files."""
        out_fd, err_fd = OUTPUT.open(job_dir, fresh=fresh)
        previous = sys.stdout, sys.stderr
        flush_c_stdio()
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        sys.stdout = _stream(1)
        sys.stderr = _stream(2)
        self._flusher.watch(sys.stdout, sys.stderr)
        try:
            yield
        finally:
            self._flusher.watch()
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.close()
            flush_c_stdio()
            os.dup2(self._saved_fds[0], 1)
            os.dup2(self._saved_fds[1], 2)
            sys.stdout, sys.stderr = previous
            OUTPUT.close()


class ResultTooLarge(Exception):
    """The job's return value is larger than the configured limit."""


def _collect_files(task: dict[str, Any], job_dir: str, done: dict[str, Any]) -> None:
    """List and checksum what the job left in its folder (everything it started has
    ended by now) into ``provenance.files``; a job whose files are over the size cap
    fails, and its files go (keeping them is what the cap is there to prevent)."""
    try:
        skip = RUNNER_FILES | get_process(task["process"]).own_files
        files = scan(job_dir, skip)
    except Exception as exc:  # an unreadable file: the job's own outcome still stands
        done.setdefault("provenance", {})["files_error"] = f"{type(exc).__name__}: {exc}"
        return
    limit = task.get("max_files_bytes") or 0
    size = total_size(files)
    if limit and size > limit:
        remove(job_dir, files)
        message = (
            f"the job wrote {size:,} bytes of files ({len(files)} file(s)), over this "
            f"server's limit of {limit:,} bytes per job; its files were removed"
        )
        with open(os.path.join(job_dir, "stderr"), "a", encoding="utf-8") as stderr:
            stderr.write(f"jobserver: {message}\n")  # the output has been captured by now
        done.update(
            status="failed",
            result=None,
            result_file=None,
            error=error_record("FilesTooLarge", message),
        )
        files = []
    done.setdefault("provenance", {})["files"] = files


def _with_local_data(task: dict[str, Any], job_dir: str) -> dict[str, Any]:
    """A datafile that came as content (the executor shares no disk with the server)
    becomes a file in the job's folder, read by path like any other."""
    binding = task.get("data")
    if not binding or binding.get("type") != "datafile" or "content" not in binding:
        return task
    folder = os.path.join(job_dir, ".data")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, os.path.basename(binding["name"]))
    with open(path, "wb") as f:
        f.write(binding["content"])
    local = {k: v for k, v in binding.items() if k != "content"}
    return {**task, "data": {**local, "path": path}}


#: how much of an exception's message and traceback a job record keeps (the whole
#: traceback is in the job's stderr)
MAX_ERROR_MESSAGE = 10_000
MAX_ERROR_DETAIL = 64_000


def _error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, ReportedFailure):
        return error_record(type(exc).__name__, str(exc), exc.detail)
    if isinstance(exc, SystemExit):  # a job ends by returning; exiting is not an answer
        message = f"the job called sys.exit({exc.code!r}) instead of returning"
    else:
        message = _message(exc) or type(exc).__name__
    if len(message) > MAX_ERROR_MESSAGE:
        more = len(message) - MAX_ERROR_MESSAGE
        message = f"{message[:MAX_ERROR_MESSAGE]}… ({more:,} more characters)"
    detail = _format_traceback(exc)
    if len(detail) > MAX_ERROR_DETAIL:
        detail = "…" + detail[-MAX_ERROR_DETAIL:]
    return error_record(type(exc).__name__, message, detail)


def _message(exc: BaseException) -> str:
    """``str(exc)``, even for an exception whose ``__str__`` fails."""
    try:
        return str(exc)
    except Exception as failure:
        return f"(its message could not be read: {type(failure).__name__})"


def _format_traceback(exc: BaseException) -> str:
    """The traceback from the script's own frames on (the worker's are noise)."""
    tb = exc.__traceback__
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) in _OWN_FILES:
        tb = tb.tb_next
    try:
        return "".join(traceback.format_exception(type(exc), exc, tb))
    except Exception:  # its message cannot be read: the frames and the type still can
        return "".join(traceback.format_tb(tb)) + f"{type(exc).__name__}: {_message(exc)}\n"


def _stream(fd: int) -> io.TextIOWrapper:
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(
        io.BufferedWriter(raw, buffer_size=1 << 16),
        encoding="utf-8",
        errors="backslashreplace",
        write_through=False,
    )


class _Flusher:
    """Flushes the job's buffered output a few times a second, so output shows while the
    job runs without a system call per ``print``; also sends folded progress reports."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: tuple[io.TextIOBase, ...] = ()
        self._wake = threading.Event()
        threading.Thread(target=self._loop, name="jobserver-flusher", daemon=True).start()

    def watch(self, *streams: io.TextIOBase) -> None:
        with self._lock:
            if not streams:
                for stream in self._streams:
                    with contextlib.suppress(Exception):
                        stream.flush()
            self._streams = streams
        if streams:
            self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(FLUSH_INTERVAL)
            with self._lock:
                if not self._streams:
                    self._wake.clear()
                    continue
                for stream in self._streams:
                    with contextlib.suppress(Exception):
                        stream.flush()
                with contextlib.suppress(OSError):
                    OUTPUT.place()  # the job runs on: its output shows from now on
            context._state.flush()


try:
    LIBC: Any = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - no C library to talk to
    LIBC = None


def flush_c_stdio() -> None:
    """Flush C-level stdio buffers so a C extension's printf lands in the right job."""
    if LIBC is not None:
        with contextlib.suppress(Exception):
            LIBC.fflush(None)


class _InterpreterState:
    """What a job may change in the worker's interpreter that the next job would feel:
    the import path, the recursion limit, the umask, timers and signal handlers. (Changes
    to modules themselves stay; ``LocalExecutor.max_jobs_per_worker = 1`` gives each job
    a fresh worker.)"""

    SIGNALS = ("SIGALRM", "SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGCHLD")

    def __init__(self) -> None:
        self.path = list(sys.path)
        self.recursion_limit = sys.getrecursionlimit()
        self.umask = os.umask(0o022)
        os.umask(self.umask)
        self.handlers = {
            name: signal.getsignal(getattr(signal, name))
            for name in self.SIGNALS
            if hasattr(signal, name)
        }

    def restore(self) -> None:
        sys.path[:] = self.path
        sys.setrecursionlimit(self.recursion_limit)
        os.umask(self.umask)
        signal.alarm(0)  # an alarm or interval timer left set would strike the next job
        signal.setitimer(signal.ITIMER_REAL, 0)
        for name, handler in self.handlers.items():
            with contextlib.suppress(TypeError, ValueError, OSError):
                signal.signal(getattr(signal, name), handler)


def _environ_snapshot() -> dict[Any, Any]:
    """A copy of the environment, cheap enough to take for every job."""
    raw = getattr(os.environ, "_data", None)  # the encoded mapping os.environ wraps
    return dict(raw) if isinstance(raw, dict) else dict(os.environ)


def _restore_environ(snapshot: dict[Any, Any]) -> None:
    if _environ_snapshot() == snapshot:
        return
    raw = getattr(os.environ, "_data", None)
    decode = getattr(os.environ, "decodekey", None), getattr(os.environ, "decodevalue", None)
    if isinstance(raw, dict) and decode[0] and decode[1]:
        snapshot = {decode[0](k): decode[1](v) for k, v in snapshot.items()}
    os.environ.clear()
    os.environ.update(snapshot)


def _reap_orphans() -> None:
    """Collect adopted descendants that have exited, so none stay as zombies."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
