"""A server that stops or dies with jobs in flight loses no job record.

These tests run ``jupyter server`` as a child process, so it can be killed for real.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import signal
import sqlite3
import urllib.request
from typing import Any

import psutil
import pytest
from helpers import FILE_SCRIPTS, TEST_SCRIPTS, TESTS

from jupyter_jobserver.testing import ServerProcess


def _config(tmp_path: pathlib.Path, **jobserver: Any) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {
                "jupyter_jobserver": True,
                "jupyterlab": False,
                "jupyter_lsp": False,
                "notebook_shim": False,
            }
        },
        "JobServerApp": {
            "state_dir": str(tmp_path / "state"),
            "workers": 1,
            "scripts": {**TEST_SCRIPTS, "tree": FILE_SCRIPTS["tree"]},
            "entry_point_scripts": False,
            **jobserver,
        },
        "LocalExecutor": {"total_cores": 1},
    }


def _jobs_in_flight(server: ServerProcess) -> tuple[dict, list[dict], int]:
    """One running job (its worker's pid printed) and two queued behind it."""
    running = server.call("POST", "jobs", {"script": "pid_then_sleep", "run": True})
    job = server.call("GET", f"jobs/{running['id']}?wait=30&until=running")
    assert job["status"] == "running"
    queued = [
        server.request("POST", "jobs", {"script": "echo", "kwargs": {"text": str(i)}, "run": True})[
            1
        ]
        for i in range(2)
    ]
    assert [q["status"] for q in queued] == ["queued", "queued"]
    # the worker prints its pid first thing: read it off the live event stream
    return running, queued, int(_first_stdout(server, running["id"]))


def _first_stdout(server: ServerProcess, job_id: str) -> str:
    request = urllib.request.Request(
        f"{server.base}/jobserver/api/jobs/{job_id}/events",
        headers={"Authorization": f"token {server.token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        for raw in response:
            line = raw.decode()
            if line.startswith("data:") and '"stream":"stdout"' in line:
                return json.loads(line[5:])["text"]
    raise AssertionError("the job printed nothing")


@pytest.fixture
def server(tmp_path: pathlib.Path) -> Any:
    servers: list[ServerProcess] = []

    def make(**jobserver: Any) -> ServerProcess:
        process = ServerProcess(tmp_path, _config(tmp_path, **jobserver), python_path=[str(TESTS)])
        servers.append(process)
        return process

    yield make
    for process in servers:
        process.stop()


def test_a_killed_server_fails_running_jobs_and_requeues_queued_ones(server: Any) -> None:
    first = server().start()
    running, queued, worker_pid = _jobs_in_flight(first)
    first.signal(signal.SIGKILL)  # no chance to clean up
    # the worker notices its server is gone and ends itself (and its children)
    psutil.wait_procs([psutil.Process(worker_pid)], timeout=10)
    assert not psutil.pid_exists(worker_pid)

    second = server().start()
    job = second.call("GET", f"jobs/{running['id']}")
    assert job["status"] == "failed"
    assert job["error"]["type"] == "ServerRestart"
    assert "rerun" in job["error"]["message"]
    assert job["finished"] is not None
    for i, waiting in enumerate(queued):
        job = second.call("GET", f"jobs/{waiting['id']}?wait=60")
        assert job["status"] == "succeeded"
        assert job["result"] == str(i)
    listing = second.call("GET", "jobs")
    assert listing["total"] == 3


def test_a_stopped_server_says_why_its_running_job_failed(server: Any) -> None:
    first = server().start()
    running, queued, worker_pid = _jobs_in_flight(first)
    assert first.signal(signal.SIGTERM) == 0
    assert not psutil.pid_exists(worker_pid) or psutil.Process(worker_pid).status() == "zombie"

    second = server().start()
    job = second.call("GET", f"jobs/{running['id']}")
    assert job["status"] == "failed"
    assert job["error"]["type"] == "ServerStopped"
    job = second.call("GET", f"jobs/{queued[0]['id']}?wait=60")
    assert job["status"] == "succeeded"


def test_queued_jobs_can_be_failed_instead_of_requeued(server: Any) -> None:
    first = server(requeue_on_restart=False).start()
    _, queued, _ = _jobs_in_flight(first)
    first.signal(signal.SIGKILL)
    second = server(requeue_on_restart=False).start()
    for waiting in queued:
        job = second.call("GET", f"jobs/{waiting['id']}")
        assert job["status"] == "failed"
        assert job["error"]["message"] == "the server stopped before this job could start"
    assert os.path.exists(second.home / "state" / "jobserver.sqlite")


def test_a_killed_server_takes_every_process_of_its_jobs_along(server: Any) -> None:
    first = server().start()
    job = first.call("POST", "jobs", {"script": "tree", "run": True})
    pids = [int(p) for p in _first_stdout(first, job["id"]).split()]
    processes = [psutil.Process(p) for p in pids]  # the script, a child, a setsid child, a daemon
    first.signal(signal.SIGKILL)
    _, alive = psutil.wait_procs(processes, timeout=10)
    assert not alive, [p.pid for p in alive]


def test_a_store_that_cannot_be_reconciled_still_takes_new_jobs(
    server: Any, tmp_path: pathlib.Path
) -> None:
    first = server().start()
    running, _, worker_pid = _jobs_in_flight(first)
    first.signal(signal.SIGKILL)
    psutil.wait_procs([psutil.Process(worker_pid)], timeout=10)
    # damage the record of the job that was running, as a broken disk or an old bug might
    with sqlite3.connect(tmp_path / "state" / "jobserver.sqlite") as db:
        db.execute("UPDATE jobs SET body = '{not json' WHERE id = ?", (running["id"],))
    second = server().start()
    job = second.call(
        "POST", "jobs?wait=60", {"script": "echo", "kwargs": {"text": "new"}, "run": True}
    )
    assert job["status"] == "succeeded"  # new work does not wait on the old
    assert any("could not reconcile" in line for line in second.lines)


def test_a_second_server_on_the_same_store_leaves_it_alone(server: Any) -> None:
    first = server().start()
    running = first.call("POST", "jobs", {"script": "pid_then_sleep", "run": True})
    assert first.call("GET", f"jobs/{running['id']}?wait=30&until=running")["status"] == "running"
    second = server().start()
    status, answer = second.request("GET", "jobs")
    assert status == 503
    assert "another job server (pid " in answer["message"]
    assert "JobServerApp.state_dir" in answer["message"]
    status, answer = second.request("POST", "jobs", {"script": "echo", "run": True})
    assert status == 503  # at once, not after waiting for a start that will never come
    assert second.signal(signal.SIGTERM) == 0  # and it stops when asked
    job = first.call("GET", f"jobs/{running['id']}")
    assert job["status"] == "running"  # the first server's job was not touched
    assert first.call("POST", f"jobs/{running['id']}/cancel")["status"] in ("cancelled", "running")


def test_a_store_that_cannot_be_opened_is_a_clear_503(server: Any, tmp_path: pathlib.Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "jobserver.sqlite").write_bytes(b"this is not a database" * 100)
    broken = server().start()
    status, answer = broken.request("GET", "scripts")
    assert status == 503
    assert "the job server could not start" in answer["message"]
    assert broken.signal(signal.SIGTERM) == 0


EVOLVING = """
def evolving(a: int = 1, b: int = {b}) -> str:
    return "{version} a=%d b=%d" % (a, b)
"""


def test_provenance_is_the_code_that_ran_and_rerun_repeats_its_values(
    tmp_path: pathlib.Path,
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    module = code / "evolving.py"
    module.write_text(EVOLVING.format(version="v1", b=2))
    first_text = module.read_bytes()
    config = _config(tmp_path, scripts={"evolving": "evolving:evolving"}, preload_scripts=False)
    config["LocalExecutor"]["max_jobs_per_worker"] = 1  # each job on a fresh worker
    with ServerProcess(tmp_path, config, python_path=[str(code)]) as server:
        # the worker that described the script has imported it; then the file changes
        module.write_text(EVOLVING.format(version="v2", b=5))
        first = server.call("POST", "jobs?wait=60", {"script": "evolving", "run": True})
        assert first["result"] == "v1 a=1 b=2"  # what that worker had loaded
        assert first["provenance"]["code_sha256"] == hashlib.sha256(first_text).hexdigest()
        assert first["provenance"]["parameters"] == {"a": 1, "b": 2}
        second = server.call("POST", "jobs?wait=60", {"script": "evolving", "run": True})
        assert second["result"] == "v2 a=1 b=5"  # a fresh worker reads the new file
        assert second["provenance"]["parameters"] == {"a": 1, "b": 5}  # the default it used
        new_hash = hashlib.sha256(module.read_bytes()).hexdigest()
        assert second["provenance"]["code_sha256"] == new_hash
        again = server.call("POST", f"jobs/{first['id']}/rerun", {})
        again = server.call("GET", f"jobs/{again['id']}?wait=60")
        assert again["result"] == "v2 a=1 b=2"  # the first run's values, on today's code
        assert again["provenance"]["code_sha256"] == new_hash  # and the record says so
