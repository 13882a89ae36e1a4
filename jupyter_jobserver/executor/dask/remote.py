"""What runs on a Dask worker: each job in a warm child process the Dask task holds.

Dask cannot interrupt a running task, so the task does no work of its own: it hands the
job to a warm worker process of the local executor's kind
(:mod:`jupyter_jobserver.executor.local.worker`, started once per Dask worker thread
and reused), keeps that child's PID, and follows it. Killing the child (cancel, timeout,
or the server finding a job that should not run) kills the job and everything it
started; the Dask task then returns at once.

While the job runs, the task publishes what the server needs on a Dask event topic
(``Worker.log_event``): ``started`` (the worker's address and the child's PID),
``progress`` and ``output`` (the bytes the job added to its stdout and stderr since the
last look, every :data:`OUTPUT_INTERVAL` seconds). The job's folder is a temporary one
on the worker; nothing of the server's disk is assumed. The files the job left there
(its ``provenance.files``, already within the per-job size cap) travel back in the Dask
task's result, read whole once the job has ended (:func:`file_contents`), before the
folder goes.

Imported on the workers only: the standard library, ``distributed`` and the runtime.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from ...runtime.proctree import kill_tree
from ...vocabulary import error_record
from ..local import protocol

#: seconds between looks for new output of a running job (the delay of live output)
OUTPUT_INTERVAL = 0.1
#: largest piece of output one event carries
OUTPUT_CHUNK = 256 << 10
#: seconds a fresh child may take to start before the job fails
CHILD_START_TIMEOUT = 120.0

#: events of these kinds go to the server's topic
STARTED = "started"
PROGRESS = "progress"
OUTPUT = "output"
DONE = "done"

#: a job's record up to this size goes to the server as an event; a larger one is the
#: Dask task's result, which the server fetches from the worker
EVENT_RECORD_LIMIT = 64 << 10
#: the key of a job's record that carries the contents of the files it left
FILES = "file_contents"

_STREAMS = ("stdout", "stderr")


class _Child:
    """A warm job process on this Dask worker; one job at a time."""

    def __init__(self, env: dict[str, str], cwd: str) -> None:
        parent, child = socket.socketpair()
        life_read, self.lifeline = os.pipe()
        cmd = [
            sys.executable,
            "-m",
            "jupyter_jobserver.executor.local.worker",
            "--control",
            str(child.fileno()),
            "--lifeline",
            str(life_read),
        ]
        try:
            self.proc = subprocess.Popen(
                cmd,
                pass_fds=(child.fileno(), life_read),
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=cwd,
                env={**os.environ, **env},
            )
        finally:
            child.close()
            os.close(life_read)
        self.conn = Connection(parent.detach())
        self.env = env
        if not self.conn.poll(CHILD_START_TIMEOUT):
            self.kill()
            raise RuntimeError(f"a job process did not start in {CHILD_START_TIMEOUT:g} s")
        message = self.conn.recv()  # EOFError if it died on the way: the caller says so
        assert message.get("type") == protocol.READY, message

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        kill_tree(self.proc.pid)
        self.close()
        self.proc.wait()

    def close(self) -> None:
        """Let go of the lifeline: an idle child ends itself."""
        if self.lifeline >= 0:
            with contextlib.suppress(OSError):
                os.close(self.lifeline)
            self.lifeline = -1
        with contextlib.suppress(OSError):
            self.conn.close()


_idle: list[_Child] = []
_idle_lock = threading.Lock()
#: the child running each job on this worker, by job id
_running: dict[str, _Child] = {}


def _take(env: dict[str, str], cwd: str) -> _Child:
    """An idle child started with this environment, or a new one."""
    with _idle_lock:
        for child in _idle:
            if child.env == env and child.proc.poll() is None:
                _idle.remove(child)
                return child
    return _Child(env, cwd)


def _give_back(child: _Child) -> None:
    with _idle_lock:
        _idle.append(child)


def _publish(topic: str, message: dict[str, Any]) -> None:
    from distributed import get_worker

    get_worker().log_event(topic, message)


class _Tail:
    """Sends what the job adds to its output files, from where it last looked."""

    def __init__(self, topic: str, job_id: str, job_dir: str) -> None:
        self.topic = topic
        self.job_id = job_id
        self.job_dir = job_dir
        self.offsets = dict.fromkeys(_STREAMS, 0)

    def send(self) -> None:
        for stream in _STREAMS:
            path = os.path.join(self.job_dir, stream)
            try:
                if os.stat(path).st_size <= self.offsets[stream]:
                    continue  # nothing new (the usual case: one system call)
                with open(path, "rb") as f:
                    f.seek(self.offsets[stream])
                    while data := f.read(OUTPUT_CHUNK):
                        _publish(
                            self.topic,
                            {
                                "kind": OUTPUT,
                                "job_id": self.job_id,
                                "stream": stream,
                                "offset": self.offsets[stream],
                                "data": data,
                            },
                        )
                        self.offsets[stream] += len(data)
            except FileNotFoundError:
                continue


def run_job(task: dict[str, Any], topic: str, env: dict[str, str]) -> dict[str, Any] | None:
    """Run one job in a warm child; its ``done`` record goes to the server as an event,
    or, when large, is returned (with a large result read back from its file, since the
    server cannot read this worker's disk)."""
    from distributed import get_worker

    worker = get_worker()
    address = worker.address
    job_id = task["job_id"]
    root = os.path.join(worker.local_directory, "jobserver")
    job_dir = os.path.join(root, job_id)
    os.makedirs(root, exist_ok=True)
    try:
        child = _take(env, root)
    except (EOFError, OSError, RuntimeError) as exc:
        return _failed("WorkerStartFailed", f"no job process could start on {address}: {exc}")
    with _idle_lock:
        _running[job_id] = child
    _publish(topic, {"kind": STARTED, "job_id": job_id, "worker": address, "pid": child.pid})
    tail = _Tail(topic, job_id, job_dir)
    timeout = task.get("timeout")
    deadline = time.monotonic() + timeout if timeout else None
    try:
        child.conn.send({"op": protocol.RUN, "task": {**task, "job_dir": job_dir}})
        while True:
            wait = OUTPUT_INTERVAL
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            try:
                message = child.conn.recv() if child.conn.poll(wait) else None
            except (EOFError, OSError):
                code = child.proc.wait()
                child.close()
                tail.send()
                return _failed(
                    "WorkerDied", f"the job's process on the Dask worker {address} {_death(code)}"
                )
            if message is not None and message.get("type") == protocol.PROGRESS:
                _publish(topic, {"kind": PROGRESS, "job_id": job_id, **message})
            elif message is not None and message.get("type") == protocol.DONE:
                tail.send()
                if message.get("retire"):
                    child.close()  # it ends itself: threads the job left run in it
                else:
                    _give_back(child)
                return _finish(message, address, topic, job_dir)
            else:
                tail.send()
            if deadline is not None and time.monotonic() >= deadline:
                child.kill()
                tail.send()
                return _failed(
                    "Timeout",
                    f"the job ran longer than its timeout of {timeout:g} s and was stopped",
                )
    finally:
        with _idle_lock:
            _running.pop(job_id, None)
        _remove_later(job_dir)


_to_remove: queue.SimpleQueue[str] = queue.SimpleQueue()
_remover: list[threading.Thread] = []


def _remove_later(folder: str) -> None:
    """Remove a finished job's folder in a thread of its own: removing a folder can take
    longer than a small job (milliseconds on some file systems), and the result need
    not wait for it."""
    _to_remove.put(folder)
    with _idle_lock:
        if not _remover:
            thread = threading.Thread(target=_remove_forever, name="jobserver-cleanup", daemon=True)
            thread.start()
            _remover.append(thread)


def _remove_forever() -> None:
    while True:
        shutil.rmtree(_to_remove.get(), ignore_errors=True)


def _finish(done: dict[str, Any], address: str, topic: str, job_dir: str) -> dict[str, Any] | None:
    """The job's record for the server: as an event when it is small (it arrives in
    order with the job's output, and costs no fetch), else as the task's result; a job
    that left files always comes as the result, carrying them."""
    path = done.pop("result_file", None)
    if path:
        with open(path, encoding="utf-8") as f:
            done["result"] = f.read()
        done["large"] = True
    error = done.get("error")
    if error and error.get("type") in ("ModuleNotFoundError", "ImportError"):
        # the script is known to the server, but this worker's environment lacks it
        error["message"] = (
            f"{error['message']} (on the Dask worker {address}: the script's modules must "
            "be installed there too)"
        )
    done["worker"] = address
    files = (done.get("provenance") or {}).get("files") or []
    if files:
        try:
            done[FILES] = file_contents(job_dir, files)
        except OSError as exc:  # the job's outcome stands; its files are not there
            done["provenance"]["files_error"] = f"{type(exc).__name__}: {exc}"
            done["provenance"]["files"] = []
        return done
    if len(done.get("result") or "") <= EVENT_RECORD_LIMIT:
        try:
            _publish(topic, {"kind": DONE, "job_id": done["job_id"], "done": done})
        except TypeError:  # something in it msgpack cannot carry: it goes as the result
            return done
        return None
    return done


def file_contents(job_dir: str, files: list[dict[str, Any]]) -> dict[str, bytes]:
    """``path -> bytes`` of the files a job left (the list the runtime made of them)."""
    contents = {}
    for entry in files:
        with open(os.path.join(job_dir, *entry["path"].split("/")), "rb") as f:
            contents[entry["path"]] = f.read()
    return contents


def kill_job(job_id: str) -> int | None:
    """Kill the child running a job, and everything it started; its PID, or ``None``
    when the job does not run here (anymore). Run on the worker's event loop by
    ``Client.run``; the Dask task following the child then returns."""
    with _idle_lock:
        child = _running.pop(job_id, None)
    if child is None:
        return None
    kill_tree(child.pid)
    return child.pid


def describe_scripts(scripts: dict[str, str], env: dict[str, str]) -> dict[str, Any]:
    """Describe function scripts in a warm child, as this worker would run them."""
    from distributed import get_worker

    root = os.path.join(get_worker().local_directory, "jobserver")
    os.makedirs(root, exist_ok=True)
    child = _take(env, root)
    try:
        child.conn.send({"op": protocol.DESCRIBE, "scripts": scripts})
        described = child.conn.recv()
    except (EOFError, OSError):
        child.close()
        raise RuntimeError("the job process describing the scripts died") from None
    _give_back(child)
    return described["scripts"]


def _failed(kind: str, message: str) -> dict[str, Any]:
    return {"status": "failed", "result": None, "error": error_record(kind, message)}


def _death(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"
