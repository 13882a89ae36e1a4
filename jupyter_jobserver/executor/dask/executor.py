"""The Dask executor: jobs run on a Dask distributed cluster.

Each task goes to Dask under a key of its own (never shared between equal inputs) and,
when the workers offer a ``cores`` resource, asks for its cores there: Dask queues it and
runs it where they are free, so no worker is oversubscribed and many tasks are in
flight at once. With ``total_cores`` set, the server keeps a queue of its own instead,
strictly in the order tasks were submitted, and hands a task to Dask once it fits.

On the worker (:mod:`.remote`) the job runs in a warm child process the Dask task
holds; what the job prints and reports comes back on a Dask event topic while it runs,
and goes into the :class:`~jupyter_jobserver.jobs.logs.JobLogs` the executor was
started with. Nothing assumes a shared disk: a datafile reaches the worker as content,
and the files a job leaves in its folder come back in the Dask task's result (held in
memory once on the worker and once here, so ``JobPolicy.max_files_size`` bounds what
one job costs) and go into the :class:`~jupyter_jobserver.jobs.files.JobFiles` before
the job is reported finished.

Faults: a worker that leaves the cluster fails the jobs it ran with a reason naming it
(the scheduler's ``remove-worker`` event says which); a scheduler that goes away fails
the jobs it ran, new submissions are refused with a reason (the REST API answers 503)
while the queued ones wait, and the executor connects again by itself. Each time the
cluster becomes usable (reached, with a worker) :meth:`DaskExecutor.reconnected` lets
the server describe the scripts again.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import uuid
from typing import Any

from traitlets import Dict, Float, Int, Unicode

from ...processes import Process, get_process
from ...serialize import DeferredJSON
from ...vocabulary import error_record
from ..base import Executor, Outcome, Task
from . import cluster as clusters
from . import remote


@dataclasses.dataclass
class _Run:
    """A task handed to Dask."""

    task: Task
    key: str
    future: Any = None
    worker: str | None = None
    pid: int | None = None
    started: bool = False
    #: how the job ends whatever the Dask task returns (cancelled, its worker lost...)
    ending: Outcome | None = None
    written: dict[str, int] = dataclasses.field(default_factory=lambda: {"stdout": 0, "stderr": 0})
    #: the last of the job's output handed to the writer thread (appends run in order)
    appended: asyncio.Future[Any] | None = None


class DaskExecutor(Executor):
    """Runs jobs on a Dask distributed cluster; see the module docstring."""

    shares_disk = False
    interrupts = True

    scheduler_address = Unicode(
        "",
        help=(
            "Address of a running Dask scheduler (tcp://host:8786). The server connects "
            "to it and never stops it. Empty: use cluster_factory, or start a LocalCluster."
        ),
    ).tag(config=True)

    cluster_factory = Unicode(
        "",
        help=(
            "Import path ('module:callable') of a callable returning a cluster object "
            "with a scheduler_address and close(), e.g. 'dask_jobqueue:SLURMCluster'. The "
            "server calls it with cluster_kwargs at start-up and closes the cluster when "
            "it stops."
        ),
    ).tag(config=True)

    cluster_kwargs = Dict(
        help="Keyword arguments for cluster_factory.",
    ).tag(config=True)

    workers = Int(
        2,
        help="Worker processes of the LocalCluster the server starts (with neither "
        "scheduler_address nor cluster_factory set).",
    ).tag(config=True)

    threads_per_worker = Int(
        1,
        help="Threads (jobs at once) of each worker of the LocalCluster the server starts.",
    ).tag(config=True)

    cores_per_worker = Int(
        1,
        help="The 'cores' resource each worker of the LocalCluster the server starts "
        "offers: a job of a script that asks for n cores runs where n are free.",
    ).tag(config=True)

    dashboard_address = Unicode(
        ":0",
        help="Dashboard address of the LocalCluster the server starts (':0': any free port; "
        "the server's status links to it).",
    ).tag(config=True)

    total_cores = Int(
        0,
        help=(
            "Cores this server may keep busy on the cluster at once; its tasks then wait "
            "in the server, strictly in order, until they fit. 0: no cap of its own: every "
            "task goes to Dask at once, which queues it and runs it where its cores are "
            "free (the right choice for a cluster several servers share)."
        ),
    ).tag(config=True)

    worker_env = Dict(
        value_trait=Unicode(),
        help="Extra environment variables of the processes that run jobs on the workers.",
    ).tag(config=True)

    connect_timeout = Float(
        10.0,
        help="Seconds to wait for the scheduler on each attempt to connect.",
    ).tag(config=True)

    heartbeat_interval = Float(
        0.5,
        help="Seconds between looks at the scheduler (the connection, workers and cores).",
    ).tag(config=True)

    describe_timeout = Float(
        120.0,
        help="Seconds the cluster may take to describe the registered scripts.",
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client: Any = None
        self._cluster: Any = None
        self._address = self.scheduler_address
        self._identity: dict[str, Any] = {}
        self._dashboard: str | None = None
        self._gone: str | None = "the executor has not started"
        self._connected = asyncio.Event()
        self._connections = 0
        self._usable = False
        #: set (and replaced) at each new connection
        self._connecting = asyncio.Event()
        self._queue: collections.deque[Task] = collections.deque()
        self._runs: dict[str, _Run] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._topic = f"jobserver-{uuid.uuid4().hex}"
        self._stopping = False
        self._flush_soon = False
        self._background: set[asyncio.Future[Any]] = set()
        self._supervisor: asyncio.Task[None] | None = None
        #: job output is appended in this one thread, in the order it arrived
        self._writer = concurrent.futures.ThreadPoolExecutor(1, "jobserver-dask-logs")

    # --- Executor ---------------------------------------------------------------------

    @property
    def cores(self) -> int:
        if self.total_cores > 0:
            return self.total_cores
        workers = (self._identity.get("workers") or {}).values()
        return max(1, sum(clusters.worker_cores(info) for info in workers))

    async def launch(self) -> None:
        self._loop = asyncio.get_running_loop()
        if not self._address:
            if self.cluster_factory:
                factory = clusters.load_factory(self.cluster_factory)
                kwargs = dict(self.cluster_kwargs)
            else:
                factory = clusters.local_cluster
                kwargs = {
                    "workers": self.workers,
                    "threads": self.threads_per_worker,
                    "cores": self.cores_per_worker,
                    "env": dict(self.worker_env),
                    "dashboard": self.dashboard_address,
                }
            self._cluster = await clusters.make_cluster(factory, kwargs)
            self._address = self._cluster.scheduler_address
        try:
            await self._connect()
        except (OSError, asyncio.TimeoutError) as exc:
            # a scheduler run by others may come later: say why meanwhile, and keep trying
            self._lost(f"cannot reach the Dask scheduler at {self._address}: {_reason(exc)}")
        self._supervisor = asyncio.ensure_future(self._supervise())

    def unavailable(self) -> str | None:
        return self._gone

    def status(self) -> dict[str, Any]:
        described = clusters.describe(self._identity, self._address, self._dashboard)
        return {
            "kind": "dask",
            "cores": self.cores,
            "workers": len(described["workers"]),
            "connected": self._gone is None,
            "reason": self._gone,
            "started_by_server": self._cluster is not None,
            "cluster": described,
        }

    async def stage(self, task: Task) -> None:
        """What the task names by a path of the server's (a notebook) goes with it as
        content: the workers need not see the server's disk."""
        process = get_process(task.process)
        if type(process).portable is not Process.portable:
            task.spec = await asyncio.to_thread(process.portable, task.spec)

    def submit(self, task: Task) -> None:
        self._queue.append(task)  # while the scheduler is gone, it waits here
        if not self._flush_soon:
            # the tasks submitted in one turn of the event loop go to Dask as one graph
            assert self._loop is not None
            self._flush_soon = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = False
        self._dispatch()

    def cancel(self, job_id: str) -> bool:
        for task in self._queue:
            if task.job_id == job_id:
                self._queue.remove(task)
                self._dispatch()
                return True
        run = self._runs.get(job_id)
        if run is None or run.ending is not None:
            return False
        run.ending = Outcome(
            status="cancelled", error=error_record("Cancelled", "the job was cancelled")
        )
        self._kill(run)
        return True

    async def describe(self, scripts: dict[str, str]) -> dict[str, Any]:
        if not scripts:
            return {}
        try:
            await asyncio.wait_for(self._connected.wait(), self.describe_timeout)
        except asyncio.TimeoutError:
            raise RuntimeError(self._gone or "the Dask scheduler is not reachable") from None
        future = self._client.submit(
            remote.describe_scripts,
            scripts,
            dict(self.worker_env),
            key=f"jobserver-describe-{uuid.uuid4().hex}",
            pure=False,
        )
        try:
            return await asyncio.wait_for(future, self.describe_timeout)
        except asyncio.TimeoutError:
            raise RuntimeError(
                f"the Dask cluster at {self._address} did not describe the scripts in "
                f"{self.describe_timeout:g} s (has it any workers?)"
            ) from None

    def connections(self) -> int:
        return self._connections

    async def reconnected(self, seen: int) -> int:
        while self._connections <= seen:
            await self._connecting.wait()
        return self._connections

    def running(self) -> list[str]:
        return [job_id for job_id, run in self._runs.items() if run.started and not run.ending]

    def queued(self) -> list[str]:
        waiting = [job_id for job_id, run in self._runs.items() if not run.started]
        return waiting + [task.job_id for task in self._queue]

    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(BaseException):
                await self._supervisor
        client = self._client
        if client is not None:
            kills = [self._kill_on(run.worker, job_id) for job_id, run in self._runs.items()]
            await asyncio.gather(*kills, return_exceptions=True)
            for run in self._runs.values():
                if run.future is not None:
                    with contextlib.suppress(Exception):
                        run.future.release()
            with contextlib.suppress(Exception):
                await client.close()
        for pending in list(self._background):
            pending.cancel()
        self._runs.clear()
        self._queue.clear()
        self._client = None
        if self._cluster is not None:
            cluster, self._cluster = self._cluster, None
            await clusters.close_cluster(cluster)
        await asyncio.to_thread(self._writer.shutdown)

    # --- the connection ---------------------------------------------------------------

    async def _connect(self) -> None:
        from distributed import Client

        client = await asyncio.wait_for(
            Client(  # type: ignore[func-returns-value]
                self._address,
                asynchronous=True,
                timeout=self.connect_timeout,
                set_as_default=False,
            ),
            self.connect_timeout + 5,
        )
        client.subscribe_topic(self._topic, self._on_event)
        client.subscribe_topic("all", self._on_cluster_event)
        self._client = client
        await self._look(client)
        self._gone = None
        self._connected.set()
        self._check_usable()
        self.log.info("jobserver: connected to the Dask scheduler at %s", self._address)
        self._dispatch()

    async def _look(self, client: Any) -> None:
        """Read the scheduler's identity: its workers, their cores, the dashboard."""
        identity = await asyncio.wait_for(client.scheduler.identity(), self.connect_timeout)
        self._identity = dict(identity)
        self._dashboard = clusters.dashboard_link(self._identity, self._address)

    def _check_usable(self) -> None:
        """Count the times the cluster became usable (connected, with a worker): each is
        a reason to describe the scripts again (see :meth:`reconnected`)."""
        usable = self._gone is None and bool(self._identity.get("workers"))
        if usable and not self._usable:
            self._connections += 1
            connecting, self._connecting = self._connecting, asyncio.Event()
            connecting.set()
        self._usable = usable

    async def _supervise(self) -> None:
        """Watch the connection; when the scheduler is gone, fail what it ran and connect
        again, for as long as the server runs."""
        while not self._stopping:
            await asyncio.sleep(self.heartbeat_interval)
            client = self._client
            if client is not None:
                try:
                    if client.status != "running":
                        raise ConnectionError("the connection to the scheduler closed")
                    await self._look(client)
                    self._check_usable()
                    self._dispatch()  # the cluster may have grown
                    continue
                except (OSError, asyncio.TimeoutError) as exc:
                    self._lost(f"the Dask scheduler at {self._address} went away: {_reason(exc)}")
            try:
                await self._connect()
            except Exception as exc:  # whatever stops it this time, it is tried again
                self.log.debug("jobserver: no Dask scheduler at %s yet: %s", self._address, exc)

    def _lost(self, reason: str) -> None:
        """The scheduler is gone: jobs it ran are failed (a new one knows nothing of
        them), queued ones wait, and new submissions are refused until it is back."""
        if self._gone is None or self._gone.startswith("the executor"):
            self.log.warning("jobserver: %s; connecting again", reason)
        self._gone = f"{reason}; the job server connects again by itself, try again in a moment"
        self._connected.clear()
        self._usable = False
        client, self._client = self._client, None
        for run in list(self._runs.values()):
            if run.ending is None:
                run.ending = _failure(
                    "SchedulerLost",
                    f"the Dask scheduler at {self._address} went away while the job was "
                    "running; rerun it",
                )
            self._finish(run, None)
        if client is not None:
            self._spawn(_close_quietly(client))

    # --- scheduling -------------------------------------------------------------------

    def _busy(self) -> int:
        return sum(run.task.cores for run in self._runs.values())

    def _dispatch(self) -> None:
        if self._client is None or self._stopping:
            return
        uses_resources = any(
            "cores" in (info.get("resources") or {})
            for info in (self._identity.get("workers") or {}).values()
        )
        batch: list[Task] = []
        while self._queue:
            task = self._queue[0]
            # with a cap of the server's own, a task waits here until it fits; without,
            # Dask queues it, and the workers' resources keep each one's cores
            capped = self.total_cores > 0
            busy = self._busy() + sum(t.cores for t in batch)
            if capped and (self._runs or batch) and busy + task.cores > self.total_cores:
                break
            self._queue.popleft()
            batch.append(task)
        self._send(batch, uses_resources)

    def _send(self, tasks: list[Task], uses_resources: bool) -> None:
        """Hand tasks to Dask: one graph for those that ask for the same cores."""
        by_cores: dict[int, list[_Run]] = collections.defaultdict(list)
        for task in tasks:
            run = _Run(task=task, key=f"jobserver-{task.job_id}-{uuid.uuid4().hex[:12]}")
            self._runs[task.job_id] = run
            by_cores[task.cores].append(run)
        for cores, runs in by_cores.items():
            futures = self._client.map(
                remote.run_job,
                [run.task.message() for run in runs],
                topic=self._topic,
                env=dict(self.worker_env),
                key=[run.key for run in runs],
                pure=False,
                resources={"cores": cores} if uses_resources else None,
            )
            for run, future in zip(runs, futures, strict=True):
                run.future = future
                self._spawn(self._follow(run))

    async def _follow(self, run: _Run) -> None:
        """Wait for the Dask task and report how the job ended."""
        done: dict[str, Any] | None = None
        try:
            # the ending of a task whose record came as an event is all that is needed:
            # only a large result is fetched from the worker
            await self._ended(run.future)
            if self._runs.get(run.task.job_id) is not run:
                return  # its record came already
            done = await run.future
        except asyncio.CancelledError:
            if self._stopping:
                raise
            if run.ending is None:
                run.ending = _failure(
                    "SchedulerLost", "Dask dropped the task (the scheduler was lost); rerun it"
                )
        except concurrent.futures.CancelledError:
            # Dask cancelled it: the client lost the scheduler (a cancel of ours set the
            # ending already)
            if run.ending is None:
                run.ending = _failure(
                    "SchedulerLost",
                    f"the Dask scheduler at {self._address} went away while the job was "
                    "running; rerun it",
                )
        except Exception as exc:
            if run.ending is None:
                run.ending = _failure(
                    "WorkerLost" if type(exc).__name__ == "KilledWorker" else "DaskError",
                    f"the Dask cluster could not run the job: {_reason(exc)}",
                )
        if not self._stopping:
            self._finish(run, done)

    def _ended(self, future: Any) -> asyncio.Future[None]:
        """Done once the Dask task has ended, however (``distributed.wait`` would need
        the default client, which this one is not; ``Future.add_done_callback`` calls
        back in a thread of Dask's, so the end is handed to the loop)."""
        assert self._loop is not None
        loop = self._loop
        ended: asyncio.Future[None] = loop.create_future()

        def settle() -> None:
            if not ended.done():
                ended.set_result(None)

        future.add_done_callback(lambda _: loop.call_soon_threadsafe(settle))
        return ended

    def _finish(self, run: _Run, done: dict[str, Any] | None) -> None:
        job_id = run.task.job_id
        if self._runs.get(job_id) is not run:
            return  # reported already
        del self._runs[job_id]
        if done is None and run.ending is None:
            run.ending = _failure("DaskError", "the job's record never came back from Dask")
        contents = (done or {}).pop(remote.FILES, None)
        outcome = run.ending or _outcome(done or {})
        if run.future is not None:
            with contextlib.suppress(Exception):  # its client may be gone with the scheduler
                run.future.release()
        if contents and run.ending is None:
            # after the job's output (one writer thread), and before it is reported
            assert self._loop is not None
            run.appended = self._loop.run_in_executor(
                self._writer, self._put_files, job_id, contents, outcome
            )
        appended = run.appended
        if appended is None or appended.done():
            self._report(job_id, outcome)
        else:  # reported once the job's output is written
            appended.add_done_callback(lambda _: self._report(job_id, outcome))
        self._dispatch()

    def _put_files(self, job_id: str, contents: dict[str, bytes], outcome: Outcome) -> None:
        """Copy the files the job left on its worker into the job files (in the writer
        thread); one that cannot be kept is left out of the list, and the outcome says
        why."""
        kept: set[str] = set()
        for path, data in contents.items():
            try:
                if self.files is None:
                    raise RuntimeError("the executor was started without job files")
                self.files.put(job_id, path, data)
                kept.add(path)
            except Exception as exc:
                self.log.warning("jobserver: job %s: file %r not kept: %s", job_id, path, exc)
                outcome.provenance["files_error"] = f"{path}: {_reason(exc)}"
        listed = outcome.provenance.get("files") or []
        outcome.provenance["files"] = [f for f in listed if f["path"] in kept]

    def _report(self, job_id: str, outcome: Outcome) -> None:
        if self.listener is not None and not self._stopping:
            self.listener.job_finished(job_id, outcome)

    def _kill(self, run: _Run) -> None:
        """Kill the job's child on its worker, then let Dask drop the task."""

        async def kill() -> None:
            with contextlib.suppress(Exception):
                await self._kill_on(run.worker, run.task.job_id)
            if run.future is not None and self._client is not None:
                with contextlib.suppress(Exception):
                    await self._client.cancel(run.future)

        self._spawn(kill())

    async def _kill_on(self, worker: str | None, job_id: str) -> None:
        if worker is not None and self._client is not None:
            await asyncio.wait_for(
                self._client.run(remote.kill_job, job_id, workers=[worker]),
                self.connect_timeout,
            )

    def _spawn(self, coroutine: Any) -> None:
        future = asyncio.ensure_future(coroutine)
        self._background.add(future)
        future.add_done_callback(self._background.discard)

    # --- what the workers and the scheduler tell -------------------------------------

    def _on_event(self, event: Any) -> None:
        _, message = event
        job_id = message.get("job_id")
        run = self._runs.get(job_id)
        kind = message.get("kind")
        if kind == remote.STARTED:
            elsewhere = run is not None and run.worker not in (None, message["worker"])
            if run is None or run.ending is not None or elsewhere:
                # a job that ended (cancelled before it started, or run again by Dask
                # after its worker was lost) must not run: it is killed where it is
                self._spawn(self._kill_quietly(message["worker"], job_id))
                return
            run.worker, run.pid = message["worker"], message["pid"]
            if not run.started:
                run.started = True
                if self.listener is not None:
                    self.listener.job_started(job_id)
        elif run is None or run.ending is not None:
            return
        elif kind == remote.PROGRESS and self.listener is not None:
            self.listener.job_progress(job_id, message["progress"])
        elif kind == remote.OUTPUT:
            self._output(run, message["stream"], message["offset"], message["data"])
        elif kind == remote.DONE:
            self._finish(run, message["done"])

    def _output(self, run: _Run, stream: str, offset: int, data: bytes) -> None:
        """Append output once, in order (a piece seen before is skipped)."""
        written = run.written[stream]
        if offset + len(data) <= written:
            return
        data = data[max(0, written - offset) :]
        run.written[stream] = offset + len(data) if offset > written else written + len(data)
        assert self._loop is not None
        run.appended = self._loop.run_in_executor(
            self._writer, self.logs.append, run.task.job_id, stream, data
        )

    def _on_cluster_event(self, event: Any) -> None:
        _, message = event
        if not isinstance(message, dict) or message.get("action") != "remove-worker":
            return
        worker = message.get("worker")
        for run in list(self._runs.values()):
            # a task that had not started there is moved to another worker by Dask
            if run.ending is None and run.worker == worker:
                run.ending = _failure(
                    "WorkerLost",
                    f"the Dask worker {worker} running the job was lost (it died or left "
                    "the cluster); rerun the job",
                )
                self._kill(run)  # Dask would run it again elsewhere: it is dropped
                self._finish(run, None)

    async def _kill_quietly(self, worker: str, job_id: str) -> None:
        with contextlib.suppress(Exception):
            await self._kill_on(worker, job_id)


class _Text(DeferredJSON):
    """A large result, as the Dask task returned it: the store writes it in its thread."""

    def __init__(self, text: str) -> None:
        self._text = text

    def text(self) -> str:
        return self._text


def _outcome(done: dict[str, Any]) -> Outcome:
    result = done.get("result")
    if result is not None and done.get("large"):
        result = _Text(result)
    return Outcome(
        status=done.get("status", "failed"),
        result=result,
        error=done.get("error"),
        exit_code=done.get("exit_code"),
        provenance=done.get("provenance") or {},
        progress=done.get("progress"),
    )


def _failure(kind: str, message: str) -> Outcome:
    return Outcome(status="failed", error=error_record(kind, message))


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


async def _close_quietly(client: Any) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.close(), 10)
