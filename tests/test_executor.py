"""Executors on their own: the contract every executor keeps (order, cores, progress,
cancel, timeout, crashes, large results, listener calls on the event loop), then what
only the local executor has (warm workers, recycling, memory limits).

The Dask executor runs the contract on the session's real ``LocalCluster`` (two worker
processes, see ``conftest.py``)."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import sys
from typing import Any

import pytest
from executors import Recorder, task
from helpers import TESTS

from jupyter_jobserver.executor import DaskExecutor, Executor, LocalExecutor, Outcome, Task
from jupyter_jobserver.jobs import FolderJobFiles, FolderJobLogs
from jupyter_jobserver.serialize import DeferredJSON

#: every executor the contract tests run against
EXECUTORS: dict[str, type[Executor]] = {"local": LocalExecutor, "dask": DaskExecutor}


def _start(kind: str, tmp_path: pathlib.Path, request: Any = None) -> Any:
    made: list[Executor] = []
    logs = FolderJobLogs(root=str(tmp_path / "jobs"))
    files = FolderJobFiles(root=str(tmp_path / "jobs"))

    async def make(**traits: Any) -> tuple[Any, Recorder]:
        traits.setdefault("worker_env", {"PYTHONPATH": str(TESTS)})
        if kind == "dask":
            cluster = request.getfixturevalue("dask_cluster")
            traits.setdefault("scheduler_address", cluster.scheduler_address)
        executor = EXECUTORS[kind](**traits)
        recorder = Recorder()
        await executor.start(recorder, logs, files)
        made.append(executor)
        return executor, recorder

    return make, made, logs


@pytest.fixture(params=sorted(EXECUTORS))
def any_executor(request: Any, tmp_path: pathlib.Path, jp_asyncio_loop: Any) -> Any:
    """Make an executor of each kind, started with a recording listener."""
    make, made, logs = _start(request.param, tmp_path, request)
    make.logs = logs
    make.files = FolderJobFiles(root=str(tmp_path / "jobs"))
    yield make
    for executor in made:
        jp_asyncio_loop.run_until_complete(executor.stop())


@pytest.fixture
def make_executor(tmp_path: pathlib.Path, jp_asyncio_loop: Any) -> Any:
    """Make a local executor, started with a recording listener."""
    make, made, logs = _start("local", tmp_path)
    make.logs = logs
    yield make
    for executor in made:
        jp_asyncio_loop.run_until_complete(executor.stop())


async def test_tasks_start_in_order_and_never_oversubscribe_cores(
    any_executor: Any, tmp_path: pathlib.Path
) -> None:
    executor, recorder = await any_executor(workers=2, total_cores=2)
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
        pids.append(executor.worker_pids()[0] if executor.worker_pids() else None)
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


async def test_progress_reaches_the_listener(any_executor: Any, tmp_path: pathlib.Path) -> None:
    executor, recorder = await any_executor(workers=1)
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
    pids = executor.worker_pids()
    await executor.stop()
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]


async def test_output_goes_to_the_job_logs(any_executor: Any, tmp_path: pathlib.Path) -> None:
    executor, recorder = await any_executor(workers=1)
    executor.submit(task(tmp_path, "talk", "echo", text="hello there"))
    assert (await recorder.outcome("talk")).status == "succeeded"
    logs = any_executor.logs
    assert b"hello there" in logs.read("talk", "stdout", 0, 1 << 20)
    assert logs.size("talk", "stdout") > 0


async def test_cancel_and_timeout_end_a_running_task(
    any_executor: Any, tmp_path: pathlib.Path
) -> None:
    executor, recorder = await any_executor(workers=2, total_cores=2)
    executor.submit(task(tmp_path, "stopped", "sleepy", seconds=60))
    await recorder.start_of("stopped")
    assert executor.running() == ["stopped"]
    assert executor.cancel("stopped")
    assert (await recorder.outcome("stopped")).status == "cancelled"
    late = task(tmp_path, "late", "sleepy", seconds=60)
    late.timeout = 0.5
    executor.submit(late)
    outcome = await recorder.outcome("late")
    assert outcome.status == "failed"
    assert outcome.error["type"] == "Timeout"
    assert not executor.cancel("late")  # nothing of it is left to cancel


async def test_a_crash_fails_only_its_task(any_executor: Any, tmp_path: pathlib.Path) -> None:
    executor, recorder = await any_executor(workers=1)
    executor.submit(task(tmp_path, "crash", "kill_self"))
    outcome = await recorder.outcome("crash")
    assert outcome.status == "failed"
    assert outcome.error["type"] == "WorkerDied"
    executor.submit(task(tmp_path, "next", "echo", text="still here"))
    assert (await recorder.outcome("next")).status == "succeeded"


async def test_a_large_result_is_fetched_by_the_store_not_by_path(
    any_executor: Any, tmp_path: pathlib.Path
) -> None:
    executor, recorder = await any_executor(workers=1)
    executor.submit(task(tmp_path, "large", "big", size=1 << 20))
    outcome = await recorder.outcome("large")
    assert outcome.status == "succeeded"
    assert isinstance(outcome.result, DeferredJSON)
    assert len(json.loads(outcome.result.text())) == 1 << 20
    outcome.result.release()


async def test_listener_calls_from_another_thread_arrive_on_the_loop(
    any_executor: Any, tmp_path: pathlib.Path
) -> None:
    import threading

    executor, recorder = await any_executor(workers=1)
    loop_thread = threading.get_ident()
    seen: list[int] = []
    finished = asyncio.get_running_loop().create_future()

    def job_finished(job_id: str, outcome: Outcome) -> None:
        seen.append(threading.get_ident())
        finished.set_result(outcome)

    recorder.job_finished = job_finished  # type: ignore[method-assign]
    outcome = Outcome(status="succeeded", result="1")
    caller = threading.Thread(target=executor.listener.job_finished, args=("x", outcome))
    caller.start()
    caller.join()
    assert (await asyncio.wait_for(finished, 10)).result == "1"
    assert seen == [loop_thread]


def test_every_executor_states_what_it_can_do() -> None:
    for kind in EXECUTORS.values():
        assert isinstance(kind.shares_disk, bool)
        assert isinstance(kind.interrupts, bool)


async def test_the_files_a_job_wrote_reach_the_job_files_with_their_checksums(
    any_executor: Any, tmp_path: pathlib.Path
) -> None:
    """Wherever the job ran, its files are listed in the outcome and readable from the
    job files the executor was started with once it reports the job finished."""
    import hashlib

    executor, recorder = await any_executor(workers=1, total_cores=1)
    executor.submit(
        Task(
            job_id="writer",
            process="function",
            spec={"target": "jobfiles_scripts:write_files"},
            kwargs={"text": "contract"},
        )
    )
    outcome = await recorder.outcome("writer")
    assert outcome.status == "succeeded", outcome
    listed = outcome.provenance["files"]
    assert [f["path"] for f in listed] == ["plot.png", "sub/deeper/notes.txt", "table.csv"]
    for entry in listed:
        data = any_executor.files.read("writer", entry["path"], 0, 1 << 20)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert len(data) == entry["size"]


async def test_quiet_jobs_leave_only_their_folders_behind(
    make_executor: Any, tmp_path: pathlib.Path
) -> None:
    executor, recorder = await make_executor(workers=1)
    quiet = [f"quiet{i}" for i in range(5)]
    for job_id in quiet:
        executor.submit(task(tmp_path, job_id, "noop"))
    executor.submit(task(tmp_path, "loud", "echo", text="said aloud"))
    for job_id in [*quiet, "loud"]:
        assert (await recorder.outcome(job_id)).status == "succeeded"
    logs = make_executor.logs
    assert b"said aloud" in logs.read("loud", "stdout", 0, 1 << 20)
    assert logs.read("quiet0", "stdout", 0, 1 << 20) == b""
    await executor.stop()
    # every job has its folder, and the worker's spare files went with it
    assert sorted(os.listdir(logs.root)) == sorted([*quiet, "loud"])


async def test_a_cancelled_job_keeps_what_it_printed(
    make_executor: Any, tmp_path: pathlib.Path
) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    executor, recorder = await make_executor(workers=1)
    executor.submit(task(tmp_path, "held", "gated", gate=str(gate)))
    # opening the gate for writing returns once the job, having printed, waits at it
    writer = await asyncio.to_thread(open, gate, "w")
    try:
        assert executor.cancel("held")
        assert (await recorder.outcome("held")).status == "cancelled"
    finally:
        writer.close()
    assert b"before the gate" in make_executor.logs.read("held", "stdout", 0, 1 << 20)
    executor.submit(task(tmp_path, "after", "echo", text="next one"))
    assert (await recorder.outcome("after")).status == "succeeded"
    assert b"next one" in make_executor.logs.read("after", "stdout", 0, 1 << 20)
