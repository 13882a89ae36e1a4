"""A server killed with SIGKILL while 100 jobs are in flight loses none and runs none twice.

The script appends its key to a ledger file as it runs, so a job that ran twice shows
twice; after a restart on the same state folder every job must reach a final status,
and no worker of the killed server may survive it.
"""

from __future__ import annotations

import pathlib
import signal
from typing import Any

import psutil
import pytest
from helpers import TESTS

from jupyter_jobserver.testing import ServerProcess

JOBS = 100
SCRIPTS = '''
import os
import time


def ledger(path: str, key: str, seconds: float = 0.05) -> str:
    """Append the key to the ledger (one write, O_APPEND), then take a little time."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (key + "\\n").encode())
    finally:
        os.close(fd)
    time.sleep(seconds)
    return key
'''
FINAL = {"succeeded", "failed", "cancelled"}


def _config(home: pathlib.Path, scripts: pathlib.Path) -> dict[str, Any]:
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
            "state_dir": str(home / "state"),
            "workers": 2,
            "scripts": {"ledger": "crash_scripts:ledger"},
            "entry_point_scripts": False,
        },
        "LocalExecutor": {"total_cores": 2, "worker_env": {"PYTHONPATH": str(scripts)}},
    }


@pytest.fixture
def servers(tmp_path: pathlib.Path) -> Any:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "crash_scripts.py").write_text(SCRIPTS)
    started: list[ServerProcess] = []

    def make() -> ServerProcess:
        server = ServerProcess(
            tmp_path, _config(tmp_path, scripts), python_path=[str(scripts), str(TESTS)]
        )
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.stop()


def test_a_killed_server_with_100_jobs_in_flight_loses_none_and_runs_none_twice(
    servers: Any, tmp_path: pathlib.Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    first = servers()
    ids = []
    for i in range(JOBS):
        job = first.call(
            "POST",
            "jobs",
            {
                "script": "ledger",
                "kwargs": {"path": str(ledger), "key": str(i), "seconds": 0.5},
                "run": True,
            },
        )
        ids.append(job["id"])
    # at least one job has run and more are queued or running: the kill lands mid-flight
    done = first.call("GET", f"jobs/{ids[0]}?wait=60")
    assert done["status"] == "succeeded"
    assert first.call("GET", f"jobs/{ids[-1]}")["status"] in {"queued", "running"}
    assert first.proc is not None
    workers = psutil.Process(first.proc.pid).children(recursive=True)
    assert workers, "the server has no worker processes"
    first.signal(signal.SIGKILL)
    _, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, [p.pid for p in alive]

    second = servers()
    final = {}
    for job_id in ids:
        job = second.call("GET", f"jobs/{job_id}?wait=120")
        final[job_id] = job
        assert job["status"] in FINAL, job
    assert second.call("GET", "jobs?limit=1000")["total"] == JOBS

    keys = ledger.read_text().split()
    assert len(keys) == len(set(keys)), sorted(k for k in set(keys) if keys.count(k) > 1)
    for i, job_id in enumerate(ids):
        job = final[job_id]
        if job["status"] == "succeeded":
            assert job["result"] == str(i)
            assert str(i) in keys
        else:  # only a job running when the server died fails, and says why
            assert job["status"] == "failed", job
            assert job["error"]["type"] == "ServerRestart", job
