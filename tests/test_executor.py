"""The local executor on its own: warm workers, order, cores, recycling, failures."""

from __future__ import annotations

import asyncio
import json
import pathlib
import sys
from typing import Any

import pytest
from conftest import TESTS

from jupyter_jobserver.executor import LocalExecutor, Outcome, Task


class Recorder:
    """An executor listener that remembers what it heard and when."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.progress: list[tuple[str, dict]] = []
        self.finished: dict[str, Outcome] = {}
        self._waiters: dict[str, asyncio.Future[Outcome]] = {}
        self._starts: dict[str, asyncio.Future[None]] = {}

    def job_started(self, job_id: str) -> None:
        self.started.append(job_id)
        waiter = self._starts.pop(job_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def start_of(self, job_id: str, timeout: float = 60) -> None:
        if job_id not in self.started:
            waiter = self._starts.setdefault(job_id, asyncio.get_running_loop().create_future())
            await asyncio.wait_for(waiter, timeout)

    def job_progress(self, job_id: str, progress: dict[str, Any]) -> None:
        self.progress.append((job_id, progress))

    def job_finished(self, job_id: str, outcome: Outcome) -> None:
        self.finished[job_id] = outcome
        waiter = self._waiters.pop(job_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(outcome)

    async def outcome(self, job_id: str, timeout: float = 60) -> Outcome:
        if job_id in self.finished:
            return self.finished[job_id]
        waiter = self._waiters.setdefault(job_id, asyncio.get_running_loop().create_future())
        return await asyncio.wait_for(waiter, timeout)


@pytest.fixture
def make_executor(tmp_path: pathlib.Path) -> Any:
    made: list[LocalExecutor] = []

    async def make(**traits: Any) -> tuple[LocalExecutor, Recorder]:
        traits.setdefault("worker_env", {"PYTHONPATH": str(TESTS)})
        executor = LocalExecutor(**traits)
        recorder = Recorder()
        await executor.start(recorder)
        made.append(executor)
        return executor, recorder

    yield make
    for executor in made:
        for worker in list(executor._workers):
            worker.kill()
            worker.close()


def task(tmp_path: pathlib.Path, job_id: str, function: str, cores: int = 1, **kwargs: Any) -> Task:
    return Task(
        job_id=job_id,
        process="function",
        job_dir=str(tmp_path / job_id),
        target=f"jobserver_test_scripts:{function}",
        kwargs=kwargs,
        cores=cores,
    )


async def test_tasks_start_in_order_and_never_oversubscribe_cores(
    make_executor: Any, tmp_path: pathlib.Path
) -> None:
    executor, recorder = await make_executor(workers=2, total_cores=2)
    tasks = [
        task(tmp_path, "one", "two_cores", cores=1, seconds=0.6),
        task(tmp_path, "both", "two_cores", cores=2, seconds=0.3),
        task(tmp_path, "after", "two_cores", cores=1, seconds=0.1),
    ]
    for t in tasks:
        executor.submit(t)
    assert executor.queued() == ["both", "after"] or executor.queued() == ["one", "both", "after"]
    outcomes = {t.job_id: await recorder.outcome(t.job_id) for t in tasks}
    assert recorder.started == ["one", "both", "after"]
    spans = {k: json.loads(o.result) for k, o in outcomes.items()}
    assert spans["both"]["cores"] == 2
    # the two-core task ran alone; the one behind it waited even though a worker was free
    assert spans["both"]["start"] >= spans["one"]["end"]
    assert spans["after"]["start"] >= spans["both"]["end"]


async def test_a_worker_that_cannot_start_fails_queued_tasks(
    make_executor: Any, tmp_path: pathlib.Path
) -> None:
    executor, recorder = await make_executor(workers=1, python=sys.executable + "-missing")
    executor.submit(task(tmp_path, "doomed", "noop"))
    outcome = await recorder.outcome("doomed")
    assert outcome.status == "failed"
    assert outcome.error["type"] == "WorkerStartFailed"
    executor.submit(task(tmp_path, "later", "noop"))
    assert (await recorder.outcome("later")).error["type"] == "WorkerStartFailed"


async def test_workers_are_reused_and_recycled(make_executor: Any, tmp_path: pathlib.Path) -> None:
    executor, recorder = await make_executor(workers=1, max_jobs_per_worker=2)
    pids = []
    for i in range(4):
        executor.submit(task(tmp_path, f"j{i}", "echo", text=str(i)))
        await recorder.outcome(f"j{i}")
        pids.append(executor._workers[0].pid if executor._workers else None)
    pids = [p for p in pids if p is not None]
    assert len(set(pids)) >= 2  # replaced after two jobs
    assert all(recorder.finished[f"j{i}"].status == "succeeded" for i in range(4))


async def test_a_memory_limit_turns_a_runaway_job_into_a_memory_error(
    make_executor: Any, tmp_path: pathlib.Path
) -> None:
    executor, recorder = await make_executor(workers=1, worker_memory_limit=1 << 30)
    executor.submit(task(tmp_path, "hog", "big", size=2 << 30))
    outcome = await recorder.outcome("hog")
    assert outcome.status == "failed"
    assert outcome.error["type"] == "MemoryError"
    executor.submit(task(tmp_path, "fine", "echo", text="ok"))
    assert (await recorder.outcome("fine")).status == "succeeded"


async def test_progress_reaches_the_listener(make_executor: Any, tmp_path: pathlib.Path) -> None:
    executor, recorder = await make_executor(workers=1)
    executor.submit(task(tmp_path, "p", "progress_steps", steps=4, delay=0.15))
    outcome = await recorder.outcome("p")
    assert outcome.progress == {"fraction": 1.0, "message": "step 4"}
    seen = [p["fraction"] for job_id, p in recorder.progress if job_id == "p"]
    assert seen
    assert seen[-1] == 1.0
    assert seen == sorted(seen)


async def test_stopping_ends_every_worker(make_executor: Any, tmp_path: pathlib.Path) -> None:
    import psutil

    executor, recorder = await make_executor(workers=2)
    executor.submit(task(tmp_path, "long", "sleepy", seconds=60))
    await recorder.start_of("long")
    pids = [w.pid for w in executor._workers]
    await executor.stop()
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
