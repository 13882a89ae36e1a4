"""The services as a deployer and another extension meet them: settings on each service
(and the old ones on the app), and every status change on one hook and on Jupyter's
event bus."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from helpers import Api

from jupyter_jobserver.jobs import TransitionPlugin
from jupyter_jobserver.jobs.transitions import TRANSITION_SCHEMA_ID


@pytest.mark.parametrize(
    "jp_server_config",
    [
        {"JobPolicy": {"max_timeout": 5.0}},
        {"JobServerApp": {"max_timeout": 5.0}},  # the setting's old place still works
        {"JobServerApp": {"max_timeout": 60.0}, "JobPolicy": {"max_timeout": 5.0}},
    ],
    indirect=True,
)
async def test_a_setting_is_read_from_its_service_or_from_the_app(api: Api) -> None:
    answer = await api.post("jobs", {"script": "echo", "kwargs": {"text": "x"}, "timeout": 10})
    assert answer.code == 400
    assert "more than this server allows (5 s)" in answer.json["message"]
    ok = await api.post("jobs", {"script": "echo", "kwargs": {"text": "x"}, "timeout": 5})
    assert ok.code == 201, ok


@pytest.mark.parametrize(
    "jp_server_config", [{"JobServerApp": {"datafile_extensions": ["xyz"]}}], indirect=True
)
async def test_moved_data_settings_reach_the_datafile_service(api: Api, jobserver: Any) -> None:
    assert (await api.put("datafiles/a.xyz", raw=b"1")).code == 201
    answer = await api.put("datafiles/a.csv", raw=b"1")
    assert answer.code == 400
    assert "xyz" in answer.json["message"]


class Recorder(TransitionPlugin):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None, str]] = []
        self.done = asyncio.Event()

    def transition(self, job_id: str, start: Any, finish: str, job: Any, record: Any) -> None:
        self.seen.append((job_id, start, finish))
        if finish in ("succeeded", "deleted"):
            self.done.set()


async def test_every_status_change_reaches_a_transition_plugin(api: Api, jobserver: Any) -> None:
    plugin = Recorder()
    jobserver.jobs.lifecycle.transitions.add(plugin)
    try:
        job = (await api.post("jobs", {"script": "echo", "kwargs": {"text": "hi"}})).json
        assert (await api.post(f"jobs/{job['id']}/run")).code == 202
        await asyncio.wait_for(plugin.done.wait(), 60)
        plugin.done.clear()
        assert (await api.delete(f"jobs/{job['id']}")).code == 204
        await asyncio.wait_for(plugin.done.wait(), 60)
    finally:
        jobserver.jobs.lifecycle.transitions.remove(plugin)
    assert [(s, f) for i, s, f in plugin.seen if i == job["id"]] == [
        (None, "created"),
        ("created", "queued"),
        ("queued", "running"),
        ("running", "succeeded"),
        ("succeeded", "deleted"),
    ]


async def test_a_failing_plugin_changes_nothing(api: Api, jobserver: Any) -> None:
    class Broken(TransitionPlugin):
        def transition(self, *args: Any) -> None:
            raise RuntimeError("a plugin's own bug")

    broken = Broken()
    jobserver.jobs.lifecycle.transitions.add(broken)
    try:
        job = await api.run("echo", kwargs={"text": "still fine"})
    finally:
        jobserver.jobs.lifecycle.transitions.remove(broken)
    assert job["status"] == "succeeded"


async def test_status_changes_are_jupyter_events(
    api: Api, jobserver: Any, jp_serverapp: Any
) -> None:
    heard: list[dict[str, Any]] = []
    finished = asyncio.Event()

    async def listener(logger: Any, schema_id: str, data: dict[str, Any]) -> None:
        heard.append(data)
        if data["finish"] == "succeeded":
            finished.set()

    jp_serverapp.event_logger.add_listener(schema_id=TRANSITION_SCHEMA_ID, listener=listener)
    try:
        job = await api.run("echo", kwargs={"text": "hi"}, public=True)
        await asyncio.wait_for(finished.wait(), 30)
    finally:
        jp_serverapp.event_logger.remove_listener(schema_id=TRANSITION_SCHEMA_ID, listener=listener)
    mine = [event for event in heard if event["job_id"] == job["id"]]
    assert [event["finish"] for event in mine][-2:] == ["running", "succeeded"]
    assert mine[-1]["script"] == "echo"
    assert mine[-1]["public"] is True
    assert mine[-1]["owner"] == job["owner"]
