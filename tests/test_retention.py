"""Retention: finished jobs removed with their output and files by age or by count per
user, and never a job that is created, queued or running; against a real server."""

from __future__ import annotations

import asyncio
import datetime
import os
import pathlib
from typing import Any

import pytest
from helpers import TEST_SCRIPTS, Api, UsersByToken

SCRIPTS = {**TEST_SCRIPTS, "write_then_wait": "jobfiles_scripts:write_then_wait"}


def users(api_fetch: Any) -> tuple[Api, Api]:
    alice, bob = (Api(api_fetch, {"Authorization": f"token {n}-token"}) for n in ("alice", "bob"))
    return alice, bob


async def gated_job(api: Api, gate: pathlib.Path) -> str:
    created = await api.post(
        "jobs", {"script": "write_then_wait", "kwargs": {"gate": str(gate)}, "run": True}
    )
    assert created.code == 201, created
    await api.wait_until(created.json["id"], "running")
    return created.json["id"]


async def release(gate: pathlib.Path) -> None:
    def write() -> None:
        with gate.open("w") as f:
            f.write("go\n")

    await asyncio.to_thread(write)


async def exists(api: Api, job_id: str) -> bool:
    return (await api.get(f"jobs/{job_id}")).code == 200


@pytest.mark.parametrize(
    "jp_server_config",
    [
        {
            "ServerApp": {"identity_provider_class": UsersByToken},
            "JobServerApp": {"scripts": SCRIPTS},
            "JobRetention": {"max_jobs_per_user": 2, "interval": 0},
        }
    ],
    indirect=True,
)
async def test_each_user_keeps_their_newest_finished_jobs(
    api_fetch: Any, jobserver: Any, tmp_path: pathlib.Path
) -> None:
    alice, bob = users(api_fetch)
    finished = [(await alice.run("echo", kwargs={"text": str(n)}))["id"] for n in range(4)]
    theirs = (await bob.run("echo", kwargs={"text": "bob"}))["id"]
    created = (await alice.post("jobs", {"script": "echo", "kwargs": {"text": "later"}})).json["id"]
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    running = await gated_job(alice, gate)
    folders = pathlib.Path(jobserver.jobs_dir)
    assert (folders / finished[0] / "stdout").exists()

    removed = await jobserver.jobs.retention.sweep()

    assert removed == 2
    assert [await exists(alice, j) for j in finished] == [False, False, True, True]
    assert not (folders / finished[0]).exists()  # output and files went with the record
    assert (await alice.get(f"jobs/{finished[0]}/output/stdout")).code == 404
    assert await exists(bob, theirs)
    assert await exists(alice, created)  # not finished: neither removed nor counted
    assert await exists(alice, running)
    await release(gate)
    assert (await alice.wait(running))["status"] == "succeeded"
    listed = (await alice.get("jobs")).json
    assert listed["total"] == 4


@pytest.mark.parametrize(
    "jp_server_config",
    [{"JobServerApp": {"scripts": SCRIPTS}, "JobRetention": {"max_age_days": 1, "interval": 0}}],
    indirect=True,
)
async def test_jobs_older_than_the_age_go_and_a_running_one_stays(
    api: Api, jobserver: Any, tmp_path: pathlib.Path
) -> None:
    old = (await api.run("echo", kwargs={"text": "old"}))["id"]
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    running = await gated_job(api, gate)
    retention = jobserver.jobs.retention
    assert await retention.sweep() == 0  # finished moments ago: younger than a day
    assert await exists(api, old)
    two_days_on = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)
    assert await retention.sweep(now=two_days_on) == 1
    assert not await exists(api, old)
    assert await exists(api, running)
    await release(gate)
    assert (await api.wait(running))["status"] == "succeeded"
