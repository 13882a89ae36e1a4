"""A warm worker process: runs one job at a time for the local executor.

The server starts a few of these once and reuses them, so a small job costs a message
round trip rather than an interpreter start-up. A worker

* talks to the server over a socket (``multiprocessing.connection`` framing);
* dies with the server: a lifeline pipe whose far end only the server holds reaches
  end-of-file when the server goes, and the worker then kills its process group;
* captures each job's stdout and stderr into the job's folder at the file descriptor
  level, so output from C extensions and child processes is kept too;
* never lets a job's failure escape: an exception becomes the job's ``error``; only a
  hard crash (``os._exit``, a segfault, the OOM killer) ends the worker, and the server
  then fails that one job and starts a fresh worker.

It is started as ``python -m jupyter_jobserver.executor.local.worker --control FD
--lifeline FD`` and imports nothing heavy of its own: what a job needs, the job imports.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import ctypes
import faulthandler
import hashlib
import importlib
import inspect
import io
import json
import math
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any

from ... import context, serialize
from ...processes import file as filescripts
from ...runtime.checksums import sha256_file
from ...runtime.introspect import (
    describe_reference,
    environment,
    function_provenance,
    load_function,
    remember_source,
    warm_provenance,
)
from ...runtime.proctree import kill_descendants

#: a larger result is handed over as a file, so messages to the server stay small
INLINE_RESULT_LIMIT = 256 << 10

#: how often buffered job output is flushed to its file while the job runs (seconds)
FLUSH_INTERVAL = 0.1

_THIS_FILE = os.path.abspath(__file__)


class Worker:
    """The worker's main loop and the jobs it runs."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._send_lock = threading.Lock()
        self._provenance: dict[str, dict[str, Any]] = {}
        self._environment = environment()
        self._saved_fds = (os.dup(1), os.dup(2))
        self._flusher = _Flusher()

    # --- protocol ---------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        with self._send_lock:
            self.conn.send(message)

    def serve(self, preload: list[str]) -> None:
        for module in preload:
            try:
                remember_source(importlib.import_module(module))
            except Exception as exc:
                print(f"jobserver worker: could not preload {module}: {exc}", file=sys.stderr)
        if preload:
            warm_provenance()  # the first job's provenance then costs microseconds
        self.send({"type": "ready", "pid": os.getpid()})
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                return
            op = message.get("op")
            if op == "run":
                done = self.run(message["task"])
                self.send(done)
                if done.get("retire"):
                    # threads the job left running could write into the next job's output
                    # or progress: this worker ends (at once, whatever they do) and a
                    # fresh one takes its place
                    _flush_c_stdio()
                    os._exit(0)
            elif op == "describe":
                self.send({"type": "described", "scripts": self.describe(message["scripts"])})
            elif op == "exit":
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

    # --- jobs -------------------------------------------------------------------------

    def run(self, task: dict[str, Any]) -> dict[str, Any]:
        """Run one job and return the ``done`` message for the server."""
        job_id = task["job_id"]
        job_dir = task["job_dir"]
        os.makedirs(job_dir, exist_ok=True)
        done: dict[str, Any] = {"type": "done", "job_id": job_id, "exit_code": None}
        context._state.begin(job_id, int(task.get("cores", 1)), self._report_progress(job_id))
        threads = set(threading.enumerate())
        environ = _environ_snapshot()
        interpreter = _InterpreterState()
        cwd = os.getcwd()
        pid = os.getpid()
        try:
            with self._captured(job_dir):
                os.chdir(job_dir)
                try:
                    done["provenance"] = self._job_provenance(task)
                    value = self._execute(task, done)
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
                    if not isinstance(exc, filescripts.ScriptFailed):
                        print(_format_traceback(exc), file=sys.stderr, end="")
                    done.update(status="failed", result=None, error=_error(exc))
        finally:
            if os.getpid() != pid:  # the job forked, and this is the child returning
                os._exit(0)
            done["progress"] = context._state.end()
            kill_descendants(os.getpid())  # nothing a job started outlives it
            os.chdir(cwd)
            _restore_environ(environ)  # a job's environment changes stay with that job
            interpreter.restore()
            _reap_orphans()
        leftover = [t for t in threading.enumerate() if t not in threads and t.is_alive()]
        if leftover:
            done["retire"] = [t.name for t in leftover]
        return done

    def _execute(self, task: dict[str, Any], done: dict[str, Any]) -> Any:
        process = task["process"]
        if process == "function":
            return run_function(task, done)
        if process == "eval":
            return run_eval(task)
        if process == "file":
            try:
                done["exit_code"], result = filescripts.run(task, _data_path(task))
            except filescripts.ScriptFailed as exc:
                done["exit_code"] = exc.code
                raise
            return result
        raise ValueError(f"this worker cannot run a {process!r} process")

    def _job_provenance(self, task: dict[str, Any]) -> dict[str, Any]:
        provenance = dict(self._environment)
        if task["process"] == "function":
            target = task["target"]
            if target not in self._provenance:
                self._provenance[target] = function_provenance(target)
            provenance.update(self._provenance[target])
        elif task["process"] == "file":
            spec = task["file"]
            stat = os.stat(spec["file"])
            key = f"{spec['file']}:{stat.st_mtime_ns}:{stat.st_size}"
            if key not in self._provenance:
                self._provenance[key] = {
                    "version": spec.get("version"),
                    "code_sha256": sha256_file(spec["file"]),
                }
            provenance.update(self._provenance[key])
        elif task["process"] == "eval":
            provenance["code_sha256"] = hashlib.sha256(task["code"].encode()).hexdigest()
        return provenance

    def _report_progress(self, job_id: str) -> Callable[[dict[str, Any]], None]:
        def report(update: dict[str, Any]) -> None:
            self.send({"type": "progress", "job_id": job_id, "progress": update})

        return report

    @contextlib.contextmanager
    def _captured(self, job_dir: str) -> Iterator[None]:
        """Point fds 1 and 2, and ``sys.stdout``/``sys.stderr``, at the job's files."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        out_fd = os.open(os.path.join(job_dir, "stdout"), flags, 0o644)
        err_fd = os.open(os.path.join(job_dir, "stderr"), flags, 0o644)
        previous = sys.stdout, sys.stderr
        _flush_c_stdio()
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        sys.stdout = _stream(out_fd)
        sys.stderr = _stream(err_fd)
        self._flusher.watch(sys.stdout, sys.stderr)
        try:
            yield
        finally:
            self._flusher.watch()
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.close()
            _flush_c_stdio()
            os.dup2(self._saved_fds[0], 1)
            os.dup2(self._saved_fds[1], 2)
            sys.stdout, sys.stderr = previous


class ResultTooLarge(Exception):
    """The job's return value is larger than the configured limit."""


def run_function(task: dict[str, Any], done: dict[str, Any] | None = None) -> Any:
    """Call a registered function with the job's parameters (and its data first); record
    in ``done`` every parameter's value as the code that runs has it, defaults included
    (the server's are those of the code as it was described)."""
    func = load_function(task["target"])
    args = list(task.get("args") or [])
    kwargs = dict(task.get("kwargs") or {})
    parameter = task.get("data_parameter")
    binding = task.get("data")
    if binding is not None:
        from ...data.datatypes import load_binding

        args.insert(0, load_binding(binding, parameter or {}))
    elif parameter:
        # the data parameter comes first even when nothing is bound: it keeps its default,
        # and the job's positional arguments stay where the schema put them
        default = inspect.signature(func).parameters[parameter["parameter"]].default
        args.insert(0, None if default is inspect.Parameter.empty else default)
    if done is not None:
        skip = parameter["parameter"] if parameter else None
        used = _used_parameters(func, args, kwargs, skip)
        if used is not None:
            done.setdefault("provenance", {})["parameters"] = used
    return func(*args, **kwargs)


def _used_parameters(
    func: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], skip: str | None
) -> dict[str, Any] | None:
    """Every parameter's value for this call that JSON holds exactly, as the job record
    writes them (``*args`` for extra positional values): a rerun sends them back, so a
    value JSON would change (``inf``, an object) is left to the code's own default.
    ``None`` when the call does not fit the signature (the call itself will say why)."""
    try:
        signature = inspect.signature(func)
        bound = signature.bind(*args, **kwargs)
    except (TypeError, ValueError):
        return None
    bound.apply_defaults()
    used: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if name == skip:
            continue
        if kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                used["*args"] = list(value)
        elif kind is inspect.Parameter.VAR_KEYWORD:
            used.update(value)
        else:
            used[name] = value
    return {name: value for name, value in used.items() if _exact_json(value)}


def _exact_json(value: Any) -> bool:
    """Does JSON hold ``value`` exactly (it comes back equal, and of the same type)?"""
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_exact_json(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _exact_json(v) for k, v in value.items())
    return False


def run_eval(task: dict[str, Any]) -> Any:
    """Run raw Python code; its result is ``result`` if it sets one, else the value of its
    last expression (as in a notebook cell)."""
    namespace: dict[str, Any] = {"__name__": "__jobserver_eval__"}
    binding = task.get("data")
    if binding is not None:
        from ...data.datatypes import load_binding

        namespace["data"] = load_binding(binding, {"kind": "any"})
    else:
        namespace["data"] = None
    tree = ast.parse(task["code"], filename="<job code>", mode="exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, "<job code>", "exec"), namespace)
    if "result" in namespace:
        return namespace["result"]
    if last is not None:
        return eval(compile(last, "<job code>", "eval"), namespace)
    return None


def _data_path(task: dict[str, Any]) -> str | None:
    """A file script reads its data from a file: the datafile, or the data as JSON."""
    binding = task.get("data")
    if binding is None:
        return None
    if binding["type"] == "datafile":
        return binding["path"]
    if binding.get("file"):
        return binding["file"]
    path = os.path.join(task["job_dir"], "data.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(binding.get("data"), f)
    return path


#: how much of an exception's message and traceback a job record keeps (the whole
#: traceback is in the job's stderr)
MAX_ERROR_MESSAGE = 10_000
MAX_ERROR_DETAIL = 64_000


def _error(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, filescripts.ScriptFailed):
        return {"type": "ScriptFailed", "message": str(exc), "detail": exc.tail}
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
    return {"type": type(exc).__name__, "message": message, "detail": detail}


def _message(exc: BaseException) -> str:
    """``str(exc)``, even for an exception whose ``__str__`` fails."""
    try:
        return str(exc)
    except Exception as failure:
        return f"(its message could not be read: {type(failure).__name__})"


def _format_traceback(exc: BaseException) -> str:
    """The traceback from the script's own frames on (the worker's are noise)."""
    tb = exc.__traceback__
    while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) == _THIS_FILE:
        tb = tb.tb_next
    try:
        return "".join(traceback.format_exception(type(exc), exc, tb))
    except Exception:  # its message cannot be read: the frames and the type still can
        return "".join(traceback.format_tb(tb)) + f"{type(exc).__name__}: {_message(exc)}\n"


def _stream(fd: int) -> io.TextIOWrapper:
    raw = io.FileIO(fd, "w", closefd=True)
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
            context._state.flush()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence output while describing scripts (imports may print)."""
    with (
        open(os.devnull, "w") as devnull,
        contextlib.redirect_stdout(devnull),
        contextlib.redirect_stderr(devnull),
    ):
        yield


try:
    _LIBC: Any = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - no C library to talk to
    _LIBC = None


def _flush_c_stdio() -> None:
    """Flush C-level stdio buffers so a C extension's printf lands in the right job."""
    if _LIBC is not None:
        with contextlib.suppress(Exception):
            _LIBC.fflush(None)


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
    if sys.platform.startswith("linux") and _LIBC is not None:
        with contextlib.suppress(Exception):
            pr_set_child_subreaper = 36
            _LIBC.prctl(pr_set_child_subreaper, 1, 0, 0, 0)


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
