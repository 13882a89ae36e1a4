"""Notebook jobs against a real server, with real kernels started by nbclient in the
server's workers: parameters from the tagged cell, live output per cell, progress, a
failing cell, timeout and cancel that leave no kernel behind, the executed notebook among
the job's files."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import re
import tempfile
from typing import Any

import psutil
import pytest
from helpers import FILE_SCRIPTS, FILESCRIPTS, TEST_SCRIPTS, TESTS, Api, first_event

NOTEBOOKS = TESTS / "notebook_scripts"
CONFIG = {
    "JobServerApp": {
        "scripts": {
            **TEST_SCRIPTS,
            **FILE_SCRIPTS,
            "hello": {"notebook": str(NOTEBOOKS / "greet.ipynb")},
        },
        "script_dirs": [str(FILESCRIPTS), str(NOTEBOOKS)],
    }
}

pytestmark = pytest.mark.parametrize("jp_server_config", [CONFIG], indirect=True)


async def test_a_notebook_is_a_script_with_the_parameters_of_its_tagged_cell(api: Api) -> None:
    answer = await api.get("scripts/greet")
    assert answer.code == 200, answer
    script = answer.json
    assert script["process"] == "notebook"
    assert script["description"] == "Greet someone"
    assert script["version"] == "1.2"
    properties = script["parameters"]["properties"]
    assert properties["name"] == {
        "title": "Name",
        "default": "world",
        "type": "string",
        "description": "who to greet",
    }
    assert properties["times"]["type"] == "integer"
    assert properties["times"]["maximum"] == 10
    assert properties["scale"]["type"] == "number"
    assert properties["loud"]["type"] == "boolean"
    # the same notebook offered from configuration, by another name
    assert (await api.get("scripts/hello")).json["process"] == "notebook"


async def test_a_parameterised_notebook_runs_with_typed_values(api: Api, jobserver: Any) -> None:
    job = await api.run("greet", kwargs={"name": "Ada", "times": 3, "scale": 0.5, "loud": True})
    assert job["status"] == "succeeded", job["error"]
    assert job["result"] == {
        "greeting": "hello Ada!hello Ada!hello Ada!",
        "scaled": 1.5,
        "types": ["str", "int", "float", "bool"],
    }
    assert job["progress"]["message"] == "cell 4 of 4"  # as the author counts them
    assert job["provenance"]["kernel"] == "python3"
    assert job["provenance"]["parameters"] == {
        "name": "Ada",
        "times": 3,
        "scale": 0.5,
        "loud": True,
    }
    stdout = (await api.get(f"jobs/{job['id']}/output/stdout")).text
    assert "first cell: Ada" in stdout
    assert "'hello Ada!hello Ada!hello Ada!'" in stdout  # a cell's value, as text
    assert "to stderr" in (await api.get(f"jobs/{job['id']}/output/stderr")).text
    # the executed notebook, with its outputs, is a file of the job; so is what it wrote
    files = {f["path"]: f for f in (await api.get(f"jobs/{job['id']}/files")).json["files"]}
    assert set(files) == {"greet.ipynb", "greeting.txt"}
    executed = json.loads((await api.get(f"jobs/{job['id']}/files/greet.ipynb")).body)
    injected = executed["cells"][2]
    assert injected["metadata"]["tags"] == ["injected-parameters"]
    assert "name = 'Ada'" in "".join(injected["source"])
    outputs = [o for cell in executed["cells"] for o in cell.get("outputs", [])]
    assert any("first cell: Ada" in "".join(o.get("text", "")) for o in outputs)


async def test_a_bad_value_is_refused_before_anything_runs(api: Api) -> None:
    for kwargs, word in (
        ({"times": 0}, "times"),
        ({"times": "three"}, "times"),
        ({"unknown": 1}, "unknown"),
    ):
        answer = await api.post("jobs", {"script": "greet", "kwargs": kwargs, "run": True})
        assert answer.code == 400, answer
        assert word in answer.json["message"]
    assert (await api.get("jobs")).json["total"] == 0


async def test_output_streams_cell_by_cell_while_the_notebook_runs(
    api: Api, api_fetch: Any, tmp_path: pathlib.Path
) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    created = await api.post(
        "jobs", {"script": "slow", "kwargs": {"gate": str(gate), "seconds": 0}, "run": True}
    )
    job_id = created.json["id"]
    # the first cell's output arrives while the second cell still waits at the gate
    event = await first_event(
        api_fetch, job_id, lambda kind, data: kind == "output" and "child" in data["text"], 120
    )
    assert re.search(r"kernel \d+ child \d+", event["text"])
    running = (await api.get(f"jobs/{job_id}")).json
    assert running["status"] == "running"
    assert running["progress"]["message"] == "cell 3 of 3"

    def release() -> None:
        with gate.open("w") as f:
            f.write("go\n")

    await asyncio.to_thread(release)
    assert (await api.wait(job_id, 120))["status"] == "succeeded"


async def test_a_failing_cell_fails_the_job_with_its_number_and_error(api: Api) -> None:
    job = await api.run("failing", 120)
    assert job["status"] == "failed"
    assert job["error"]["type"] == "CellFailed"
    assert job["error"]["message"] == "cell 3 of 4 failed: ZeroDivisionError: division by zero"
    assert "1 / divisor" in job["error"]["detail"]
    assert "before the failure" in (await api.get(f"jobs/{job['id']}/output/stdout")).text
    assert "ZeroDivisionError" in (await api.get(f"jobs/{job['id']}/output/stderr")).text
    # the executed notebook is kept, up to the failing cell
    files = [f["path"] for f in (await api.get(f"jobs/{job['id']}/files")).json["files"]]
    assert files == ["failing.ipynb"]


async def kernel_and_child(api_fetch: Any, job_id: str) -> list[psutil.Process]:
    event = await first_event(
        api_fetch, job_id, lambda kind, data: kind == "output" and "child" in data["text"], 120
    )
    found = re.search(r"kernel (\d+) child (\d+)", event["text"])
    assert found, event
    processes = [psutil.Process(int(pid)) for pid in found.groups()]
    assert all(p.is_running() for p in processes)
    return processes


async def test_a_timeout_ends_the_kernel_and_what_it_started(api: Api, api_fetch: Any) -> None:
    created = await api.post("jobs", {"script": "slow", "timeout": 8, "run": True})
    job_id = created.json["id"]
    processes = await kernel_and_child(api_fetch, job_id)
    job = await api.wait(job_id, 120)
    assert job["status"] == "failed"
    assert job["error"]["type"] == "Timeout"
    _, alive = await asyncio.to_thread(psutil.wait_procs, processes, 30)
    assert alive == []
    # the killed worker's kernel sockets go when the next kernel starts
    assert (await api.run("greet", 120))["status"] == "succeeded"
    folders = pathlib.Path(tempfile.gettempdir()).glob("jobserver-kernel-*-*")
    owners = {int(folder.name.split("-")[2]) for folder in folders}
    assert all(psutil.pid_exists(pid) for pid in owners), owners


async def test_cancel_ends_the_kernel_and_what_it_started(api: Api, api_fetch: Any) -> None:
    created = await api.post("jobs", {"script": "slow", "run": True})
    job_id = created.json["id"]
    processes = await kernel_and_child(api_fetch, job_id)
    assert (await api.post(f"jobs/{job_id}/cancel")).code == 202
    _, alive = await asyncio.to_thread(psutil.wait_procs, processes, 30)
    assert alive == []
    assert (await api.get(f"jobs/{job_id}")).json["status"] == "cancelled"


async def test_each_job_gets_a_fresh_kernel_started_ahead_of_it(api: Api, jobserver: Any) -> None:
    kernels: list[int] = []
    for n in range(3):
        job = await api.run("state", 120, kwargs={"n": n})
        assert job["status"] == "succeeded", job["error"]
        kernels.append(job["result"])
    # one kernel per job, and none of them outlives its job (no state carries over)
    assert len(set(kernels)) == 3
    _, alive = await asyncio.to_thread(
        psutil.wait_procs, [psutil.Process(p) for p in kernels if psutil.pid_exists(p)], 30
    )
    assert alive == []
    # the next job's kernel is already there: each worker that ran one starts one
    workers = [psutil.Process(pid) for pid in jobserver.executor.worker_pids()]
    waiting = [
        child
        for worker in workers
        for child in worker.children(recursive=True)
        if "ipykernel" in " ".join(child.cmdline())
    ]
    assert 1 <= len(waiting) <= len(workers)


async def test_a_notebook_reads_its_bound_data_from_data_path(api: Api) -> None:
    script = (await api.get("scripts/lines")).json
    assert script["data"] == ["datafile", "raw_data"]
    inline = {"type": "raw_data", "data": [1, 2, 3], "datatype": "json"}
    job = await api.run("lines", 120, data=inline)
    assert job["status"] == "succeeded", job["error"]
    assert job["result"] == [1, 2, 3]
    upload = await api.put("datafiles/three.csv", raw=b"a\n1\n2\n")
    assert upload.code == 201, upload
    job = await api.run("lines", 120, data={"type": "datafile", "name": "three.csv"})
    assert job["status"] == "succeeded", job["error"]
    assert job["result"] == 3
    assert job["provenance"]["data"]["sha256"]
    refused = await api.post("jobs", {"script": "lines", "run": True})
    assert refused.code == 400
    assert "needs data" in refused.json["message"]
