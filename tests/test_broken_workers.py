"""A server whose workers cannot start says so, and leaves no job queued forever."""

from __future__ import annotations

import pathlib
import time
from typing import Any

import pytest
from helpers import Api, jobserver_config


@pytest.fixture
def jp_server_config(tmp_path: pathlib.Path) -> dict[str, Any]:
    return jobserver_config(tmp_path, LocalExecutor={"python": "/no/such/python"})


async def test_jobs_fail_at_once_with_the_reason(api: Api) -> None:
    scripts = [s["name"] for s in (await api.get("scripts")).json["scripts"]]
    assert "true" in scripts  # file scripts need no worker to be described
    assert "echo" not in scripts
    echo = await api.get("scripts/echo")
    assert echo.code == 404
    assert "no worker could describe it" in echo.json["message"]

    began = time.monotonic()
    answer = await api.post("jobs", {"script": "true", "run": True}, params={"wait": 30})
    assert time.monotonic() - began < 10  # not held for the whole wait
    assert answer.code == 201
    job = answer.json
    assert job["status"] == "failed"
    assert job["error"]["type"] == "WorkerStartFailed"
    assert "could not start a worker process" in job["error"]["message"]
    stored = (await api.get(f"jobs/{job['id']}")).json
    assert stored["status"] == "failed"
    created = (await api.post("jobs", {"script": "true"})).json
    assert (await api.post(f"jobs/{created['id']}/run")).code == 202
    assert (await api.wait(created["id"], 10))["status"] == "failed"
