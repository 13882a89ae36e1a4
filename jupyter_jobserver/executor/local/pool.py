"""The local executor: a pool of warm worker processes on this machine.

Workers start once and are reused. Tasks wait in one queue and start strictly in the
order they were submitted, each when a worker is free and enough cores are: a task that
needs more cores than are free holds the ones behind it, so big jobs are not starved.

A worker that crashes fails only the task it was running and is replaced; cancel and
timeout kill the worker's whole process tree and replace it too. Each worker runs under
a :mod:`.reaper`, so whatever its job started dies with it however the worker dies.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import Any

import psutil
from traitlets import Dict, Float, Int, List, Unicode, default

from ...runtime import output
from ...runtime.proctree import children, kill_tree
from ...serialize import DeferredJSON
from ...vocabulary import error_record
from ..base import Executor, Outcome, Task
from . import protocol

#: a payload larger than this reaches the worker as a file in the job's folder
INLINE_PAYLOAD = 256 << 10

#: a worker that dies this many times in a row before it is ready means workers cannot start
START_FAILURES_LIMIT = 3


class _Describe:
    """A request to describe scripts, queued like a one-core task."""

    cores = 1
    timeout: float | None = None

    def __init__(self, scripts: dict[str, str], future: asyncio.Future[Any], timeout: float):
        self.scripts = scripts
        self.future = future
        self.timeout = timeout
        self.job_id = ""


class _Worker:
    """The server's handle on one worker process."""

    def __init__(self, proc: subprocess.Popen[bytes], conn: Connection, lifeline: int) -> None:
        self.proc = proc
        self.conn = conn
        self.lifeline = lifeline
        self.ready = False
        self.started = False  # it said it was ready once (a killed worker did start)
        #: the worker's own process id, as it said when ready: its reaper is proc
        self.own_pid = proc.pid
        self.retiring = False
        self.task: Task | _Describe | None = None
        self.jobs = 0
        self.ending: Outcome | None = None
        self.timer: asyncio.TimerHandle | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill(self) -> None:
        """Kill the worker and everything it started; it takes no more tasks."""
        self.ready = False
        kill_tree(self.proc.pid)

    def close(self) -> None:
        """Let go of the lifeline: an idle worker then ends itself. (The connection is
        closed once the worker is gone.)"""
        if self.lifeline >= 0:
            with contextlib.suppress(OSError):
                os.close(self.lifeline)
            self.lifeline = -1


class LocalExecutor(Executor):
    """Runs jobs in a pool of warm worker processes on this machine."""

    shares_disk = True
    interrupts = True

    workers = Int(
        0,
        help="Number of warm worker processes (0: one per core, see `cores`).",
    ).tag(config=True)

    total_cores = Int(
        0,
        help="Cores the executor may keep busy at once (0: the cores this process may use).",
    ).tag(config=True)

    preload_modules = List(
        Unicode(),
        help="Modules every worker imports when it starts, so the first job is fast.",
    ).tag(config=True)

    python = Unicode(
        help="The Python interpreter that runs workers (default: the server's).",
    ).tag(config=True)

    worker_env = Dict(
        value_trait=Unicode(),
        help="Extra environment variables for worker processes.",
    ).tag(config=True)

    worker_memory_limit = Int(
        0,
        help=(
            "Address-space limit of each worker in bytes (0: none). A job that goes over "
            "gets a MemoryError instead of pushing the machine into swap."
        ),
    ).tag(config=True)

    max_jobs_per_worker = Int(
        0,
        help="Replace a worker after it ran this many jobs (0: never), to shed leaked memory.",
    ).tag(config=True)

    describe_timeout = Float(
        120.0,
        help="Seconds a worker may take to import and describe the registered scripts.",
    ).tag(config=True)

    cwd = Unicode(
        help="Working directory workers start in (default: the server's).",
    ).tag(config=True)

    @default("python")
    def _default_python(self) -> str:
        return sys.executable

    @default("cwd")
    def _default_cwd(self) -> str:
        return os.getcwd()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._workers: list[_Worker] = []
        self._queue: collections.deque[Task | _Describe] = collections.deque()
        self._running: dict[str, _Worker] = {}
        self._cores = self.total_cores if self.total_cores > 0 else _usable_cores()
        self._free = self._cores
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._start_failures = 0
        self._broken: str | None = None

    # --- Executor ---------------------------------------------------------------------

    @property
    def cores(self) -> int:
        return self._cores

    @property
    def worker_count(self) -> int:
        return self.workers if self.workers > 0 else self.cores

    async def launch(self) -> None:
        if self.logs is None or self.logs.folder("") is None:
            raise RuntimeError(
                "the local executor writes job output into folders on this machine; "
                "give it job logs kept in a folder"
            )
        if self.files is not None and self.files.folder("job") != self.logs.folder("job"):
            raise RuntimeError(
                "the local executor's jobs write their files beside their output; give it "
                "job files kept in the same folder as the job logs"
            )
        self._loop = asyncio.get_running_loop()
        _forget_spares(os.path.dirname(self.logs.folder("-")))
        for _ in range(self.worker_count):
            self._spawn()

    def preload(self, modules: list[str]) -> None:
        self.preload_modules = sorted(set(self.preload_modules) | set(modules))

    def status(self) -> dict[str, Any]:
        return {"kind": "local", "cores": self.cores, "workers": self.worker_count}

    def worker_pids(self) -> list[int]:
        """Process ids of the workers alive now (each is replaced when it dies); each
        runs under a reaper (:mod:`.reaper`), whose child it is."""
        pids = []
        for worker in self._workers:
            below = children(worker.pid)
            pids.append(below[0] if below else worker.pid)
        return pids

    async def stage(self, task: Task) -> None:
        """A large payload goes to the worker as a file in the job's folder, written off
        the event loop, so the message to the worker stays small."""
        data = task.data
        if data is None or "data" not in data or data.get("size", 0) <= INLINE_PAYLOAD:
            return
        folder = self.logs.folder(task.job_id)

        def write() -> str:
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, "data.json")
            with open(path, "w", encoding="utf-8") as f:
                json.dump(data["data"], f)
            return path

        path = await asyncio.to_thread(write)
        task.data = {**{k: v for k, v in data.items() if k != "data"}, "file": path}

    async def stop(self) -> None:
        self._stopping = True
        if self._loop is None:
            return  # it never started: there is nothing to stop
        workers = list(self._workers)
        for worker in workers:
            if worker.task is not None:
                worker.kill()
            worker.close()  # the lifeline closes: an idle worker ends itself
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(worker.conn.fileno())
        waits = [asyncio.to_thread(_wait, w.proc, 5.0, w.own_pid) for w in workers]
        await asyncio.gather(*waits)
        root = os.path.dirname(self.logs.folder("-"))
        for worker in workers:  # a worker ended by its lifeline leaves its spare files
            task = worker.task
            job_dir = self.logs.folder(task.job_id) if isinstance(task, Task) else None
            output.adopt(root, worker.own_pid, job_dir)
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.conn.close()
        for describe in [t for t in self._queue if isinstance(t, _Describe)]:
            if not describe.future.done():
                describe.future.set_exception(RuntimeError("the executor stopped"))
        self._queue.clear()
        self._workers.clear()

    def submit(self, task: Task) -> None:
        if self._broken:
            self._report(task.job_id, _failure("WorkerStartFailed", self._broken))
            return
        self._queue.append(task)
        self._dispatch()

    def cancel(self, job_id: str) -> bool:
        for task in self._queue:
            if isinstance(task, Task) and task.job_id == job_id:
                self._queue.remove(task)
                self._dispatch()
                return True
        worker = self._running.get(job_id)
        if worker is None:
            return False
        worker.ending = Outcome(
            status="cancelled", error=error_record("Cancelled", "the job was cancelled")
        )
        worker.kill()
        return True

    async def describe(self, scripts: dict[str, str]) -> dict[str, Any]:
        if not scripts:
            return {}
        if self._broken:
            raise RuntimeError(self._broken)
        assert self._loop is not None, "start the executor first"
        future: asyncio.Future[Any] = self._loop.create_future()
        self._queue.appendleft(_Describe(scripts, future, self.describe_timeout))
        self._dispatch()
        return await future

    def running(self) -> list[str]:
        return list(self._running)

    def queued(self) -> list[str]:
        return [t.job_id for t in self._queue if isinstance(t, Task)]

    # --- workers ----------------------------------------------------------------------

    def _spawn(self) -> None:
        parent, child = socket.socketpair()
        life_read, life_write = os.pipe()
        cmd = [
            self.python,
            "-m",
            "jupyter_jobserver.executor.local.reaper",  # the job's processes die with it
            self.python,
            "-m",
            "jupyter_jobserver.executor.local.worker",
            "--control",
            str(child.fileno()),
            "--lifeline",
            str(life_read),
        ]
        for module in self.preload_modules:
            cmd += ["--preload", module]
        if self.worker_memory_limit:
            cmd += ["--memory-limit", str(self.worker_memory_limit)]
        env = {**os.environ, **self.worker_env}
        try:
            proc = subprocess.Popen(
                cmd,
                pass_fds=(child.fileno(), life_read),
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.cwd,
                env=env,
            )
        except OSError as exc:
            parent.close()
            os.close(life_write)
            self._start_failed(f"could not start a worker process: {exc}")
            return
        finally:
            child.close()
            os.close(life_read)
        worker = _Worker(proc, Connection(parent.detach()), life_write)
        self._workers.append(worker)
        assert self._loop is not None
        self._loop.add_reader(worker.conn.fileno(), self._readable, worker)

    def _readable(self, worker: _Worker) -> None:
        """Take the worker's messages as they arrive, on the event loop: they are small
        (a large result travels as a file), so reading one never blocks for long."""
        try:
            while worker.conn.poll(0):
                self._on_message(worker, worker.conn.recv())
        except (EOFError, OSError):
            self._gone(worker)

    def _gone(self, worker: _Worker) -> None:
        """The worker's end of the socket closed: it exited or is exiting."""
        assert self._loop is not None
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(worker.conn.fileno())
        with contextlib.suppress(OSError):
            worker.conn.close()
        waited = self._loop.run_in_executor(None, worker.proc.wait)
        waited.add_done_callback(lambda f: self._on_exit(worker, f.result()))

    def _on_message(self, worker: _Worker, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == protocol.READY:
            worker.own_pid = message.get("pid") or worker.own_pid
            worker.ready = worker.started = True
            self._start_failures = 0
            self._dispatch()
        elif kind == protocol.PROGRESS:
            if self.listener and isinstance(worker.task, Task):
                self.listener.job_progress(message["job_id"], message["progress"])
        elif kind == protocol.DONE:
            task = worker.task
            self._release(worker)
            if message.get("retire"):  # the job left threads running: the worker ends now
                worker.retiring = True
                worker.ready = False
                self.log.info(
                    "jobserver: a worker is replaced: the job it ran left threads running (%s)",
                    ", ".join(message["retire"])[:200],
                )
            if isinstance(task, Task):
                # reported even if a kill is on its way: the job did finish first
                self._report(
                    task.job_id,
                    Outcome(
                        status=message["status"],
                        result=_ResultFile(message["result_file"])
                        if message.get("result_file")
                        else message.get("result"),
                        error=message.get("error"),
                        exit_code=message.get("exit_code"),
                        provenance=message.get("provenance") or {},
                        progress=message.get("progress"),
                    ),
                )
            self._maybe_retire(worker)
            self._dispatch()
        elif kind == protocol.DESCRIBED:
            task = worker.task
            self._release(worker)
            if isinstance(task, _Describe) and not task.future.done():
                task.future.set_result(message["scripts"])
            self._dispatch()

    def _on_exit(self, worker: _Worker, code: int) -> None:
        worker.close()
        with contextlib.suppress(ValueError):
            self._workers.remove(worker)
        if self._stopping:
            return
        task = worker.task
        root = os.path.dirname(self.logs.folder("-"))
        job_dir = self.logs.folder(task.job_id) if isinstance(task, Task) else None
        output.adopt(root, worker.own_pid, job_dir)  # a killed worker left its files behind
        if task is not None:
            self._release(worker)
            ending = worker.ending or _failure(
                "WorkerDied", f"the worker process running the job {_death(code)}"
            )
            if isinstance(task, _Describe):
                if not task.future.done():
                    reason = (ending.error or {}).get("message", "the worker died")
                    task.future.set_exception(RuntimeError(reason))
            else:
                self._report(task.job_id, ending)
        if not worker.started and not worker.retiring:
            self._start_failures += 1
            if self._start_failures >= START_FAILURES_LIMIT:
                self._start_failed(
                    f"worker processes exit before they are ready ({_death(code)}); "
                    "see the server log"
                )
                return
        self._spawn()
        self._dispatch()

    def _start_failed(self, reason: str) -> None:
        self.log.error("jobserver: %s", reason)
        self._broken = reason
        while self._queue:
            task = self._queue.popleft()
            if isinstance(task, _Describe):
                if not task.future.done():
                    task.future.set_exception(RuntimeError(reason))
            else:
                self._report(task.job_id, _failure("WorkerStartFailed", reason))

    def _maybe_retire(self, worker: _Worker) -> None:
        if self.max_jobs_per_worker and worker.jobs >= self.max_jobs_per_worker:
            worker.retiring = True
            worker.ready = False
            with contextlib.suppress(OSError):
                worker.conn.send({"op": protocol.EXIT})

    # --- scheduling -------------------------------------------------------------------

    def _dispatch(self) -> None:
        while self._queue and not self._stopping:
            task = self._queue[0]
            if task.cores > self._free:
                return
            worker = next((w for w in self._workers if w.ready and w.task is None), None)
            if worker is None:
                return
            self._queue.popleft()
            self._begin(worker, task)

    def _begin(self, worker: _Worker, task: Task | _Describe) -> None:
        """Send ``task`` to ``worker``. The message is pickled first: a task that
        cannot be sent fails alone, before the worker or any core is counted as taken."""
        assert self._loop is not None
        if isinstance(task, Task):
            run = {**task.message(), "job_dir": self.logs.folder(task.job_id)}
            message: dict[str, Any] = {"op": protocol.RUN, "task": run}
        else:
            message = {"op": protocol.DESCRIBE, "scripts": task.scripts}
        try:
            payload = bytes(ForkingPickler.dumps(message))
        except Exception as exc:  # too deep, too large, or not picklable
            self.log.warning("jobserver: a task could not be sent to a worker: %r", exc)
            reason = f"the job could not be sent to a worker: {type(exc).__name__}: {exc}"
            if isinstance(task, _Describe):
                if not task.future.done():
                    task.future.set_exception(RuntimeError(reason))
            else:
                self._report(task.job_id, _failure("TaskNotSent", reason))
            return
        worker.task = task
        worker.ending = None
        self._free -= task.cores
        if isinstance(task, Task):
            self._running[task.job_id] = worker
            if self.listener:
                self.listener.job_started(task.job_id)
        if task.timeout:
            worker.timer = self._loop.call_later(task.timeout, self._time_out, worker)
        try:
            worker.conn.send_bytes(payload)  # what Connection.send would send
        except OSError:
            worker.kill()  # it is gone; its reader thread reports the exit

    def _time_out(self, worker: _Worker) -> None:
        task = worker.task
        if task is None:
            return
        if isinstance(task, _Describe):
            reason = f"describing the scripts took longer than {task.timeout:g} s"
        else:
            reason = f"the job ran longer than its timeout of {task.timeout:g} s and was stopped"
        worker.ending = _failure("Timeout", reason)
        worker.kill()

    def _release(self, worker: _Worker) -> None:
        task = worker.task
        if task is None:
            return
        if worker.timer is not None:
            worker.timer.cancel()
            worker.timer = None
        self._free += task.cores
        if isinstance(task, Task):
            self._running.pop(task.job_id, None)
            worker.jobs += 1
        worker.task = None

    def _report(self, job_id: str, outcome: Outcome) -> None:
        if self.listener is not None:
            self.listener.job_finished(job_id, outcome)


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _forget_spares(root: str) -> None:
    """Remove the spare output files of workers that are gone (the server before this
    one ended without stopping them)."""
    with contextlib.suppress(OSError), os.scandir(root) as entries:
        for entry in entries:
            if not output.is_spare(entry.name):
                continue
            pid = entry.name.split("-")[1]
            if pid.isdigit() and os.path.exists(f"/proc/{pid}"):
                continue
            with contextlib.suppress(OSError):
                if entry.is_dir(follow_symlinks=False):
                    os.rmdir(entry.path)
                else:
                    os.remove(entry.path)


def _failure(kind: str, message: str) -> Outcome:
    return Outcome(status="failed", error=error_record(kind, message))


def _death(code: int) -> str:
    """Say how a process ended, for a person."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = ""
        if -code == signal.SIGKILL:
            hint = " (the system may have run out of memory)"
        elif -code == signal.SIGSEGV:
            hint = " (a segmentation fault; see the job's stderr)"
        return f"was killed by {name}{hint}"
    return f"exited with code {code}"


def _wait(proc: subprocess.Popen[bytes], timeout: float, own_pid: int | None = None) -> None:
    """Wait for a worker's process (its reaper) to end, killing it after ``timeout``;
    and for the worker itself, which a killed reaper's death signal ends a moment later."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)
        proc.wait()
    if own_pid is None or own_pid == proc.pid:
        return
    # not a child of ours: no wait() to block on, so its state is looked at (a zombie
    # has ended: whoever adopted it reaps it)
    deadline = time.monotonic() + timeout
    with contextlib.suppress(psutil.Error):
        worker = psutil.Process(own_pid)
        while worker.status() != psutil.STATUS_ZOMBIE:
            if time.monotonic() > deadline:
                worker.kill()
                return
            time.sleep(0.01)


class _ResultFile(DeferredJSON):
    """A large result a worker left in the job's folder: the store reads it in its own
    thread and the file goes once the store has it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def text(self) -> str:
        with open(self.path, encoding="utf-8") as f:
            return f.read()

    def release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)
