"""Executors for tests, and what tests of executors on their own share: a listener that
records what it heard, and a task of a test script."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

from jupyter_jobserver.executor import LocalExecutor, Outcome, Task


class DiskApart(LocalExecutor):
    """The local executor, claiming to share no disk with the server: what a remote
    executor is handed, the local one runs."""

    shares_disk = False


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


def task(tmp_path: pathlib.Path, job_id: str, function: str, cores: int = 1, **kwargs: Any) -> Task:
    return Task(
        job_id=job_id,
        process="function",
        spec={"target": f"jobserver_test_scripts:{function}"},
        kwargs=kwargs,
        cores=cores,
    )
