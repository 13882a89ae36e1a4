"""The Dask executor on real clusters: a real Jupyter server whose jobs run on the
session's ``LocalCluster`` (two worker processes of one thread, started in a folder of
their own, see ``conftest.py``), and executors on their own for what a server cannot
show (a scheduler that goes away and comes back, a cluster the executor starts)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import pathlib
import signal
import socket
import subprocess
import sys
from typing import Any

import psutil
import pytest
from executors import Recorder, task
from helpers import TESTS, Api, first_event, jobserver_config, open_gate

from jupyter_jobserver.executor import DaskExecutor, Task
from jupyter_jobserver.jobs import FolderJobFiles, FolderJobLogs
from jupyter_jobserver.processes.notebook import describe_notebook

ENV = {"PYTHONPATH": str(TESTS)}
NOTEBOOKS = TESTS / "notebook_scripts"
DASK_SCHEDULER = [
    sys.executable,
    "-m",
    "distributed.cli.dask_scheduler",
    "--dashboard-address",
    ":0",
]
DASK_WORKER = [sys.executable, "-m", "distributed.cli.dask_worker", "--dashboard-address", ":0"]


@pytest.fixture
def jp_server_config(
    tmp_path: pathlib.Path, dask_cluster: Any, request: pytest.FixtureRequest
) -> dict[str, Any]:
    """A job server whose executor is Dask, on the session's cluster (a test changes the
    executor's and the policy's settings, and adds scripts, with an indirect
    ``jp_server_config`` parameter)."""
    dask = {"scheduler_address": dask_cluster.scheduler_address, "worker_env": ENV}
    param = getattr(request, "param", {})
    config = jobserver_config(
        tmp_path,
        JobServerApp={"executor_class": "jupyter_jobserver.executor.dask.DaskExecutor"},
        DaskExecutor={**dask, **param.get("DaskExecutor", {})},
        JobPolicy={"allow_eval": True, **param.get("JobPolicy", {})},
    )
    scripts = param.get("scripts", {})
    config["JobServerApp"]["scripts"] = {**config["JobServerApp"]["scripts"], **scripts}
    return config


async def until(condition: Any, timeout: float = 30) -> None:
    """Wait until ``condition()`` holds: for state the executor finds out on its own."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(0.02)


# --- through a Jupyter server -------------------------------------------------------------


async def test_every_process_kind_runs_on_the_cluster(api: Api) -> None:
    function = await api.run("echo", kwargs={"text": "hi", "times": 2})
    assert function["status"] == "succeeded", function
    assert function["result"] == "hihi"
    stdout = await api.get(f"jobs/{function['id']}/output/stdout")
    assert stdout.text == "hi\nhi\n"
    stderr = await api.get(f"jobs/{function['id']}/output/stderr")
    assert stderr.text == "echoed 2 time(s)\n"

    evaluated = await api.run_eval("import os\nprint('from eval')\nresult = 6 * 7")
    assert evaluated["status"] == "succeeded", evaluated
    assert evaluated["result"] == 42
    assert (await api.get(f"jobs/{evaluated['id']}/output/stdout")).text == "from eval\n"

    file = await api.run("args_json", kwargs={"n": 3})
    assert file["status"] == "succeeded", file
    assert file["exit_code"] == 0
    assert file["result"]["parameters"]["n"] == 3
    assert file["result"]["cwd"].endswith(file["id"])  # a folder on the worker, for the job
    stderr = await api.get(f"jobs/{file['id']}/output/stderr")
    assert stderr.text == "stderr is not failure\n"


async def test_the_status_shows_the_cluster(api: Api, dask_cluster: Any) -> None:
    status = (await api.get("status")).json["executor"]
    assert status["kind"] == "dask"
    assert status["connected"] is True
    assert status["started_by_server"] is False
    cluster = status["cluster"]
    assert cluster["scheduler"] == dask_cluster.scheduler_address
    assert len(cluster["workers"]) == status["workers"] == 2
    assert status["cores"] == 4  # each worker offers 2 cores
    assert {w["cores"] for w in cluster["workers"]} == {2}
    assert cluster["dashboard"].startswith("http://127.0.0.1:")


async def test_a_job_asking_for_two_cores_gets_them(api: Api) -> None:
    done = await api.run("two_cores", kwargs={"seconds": 0.01})
    assert done["status"] == "succeeded", done
    assert done["result"]["cores"] == 2


async def test_output_and_progress_reach_the_record_while_the_job_runs(
    api: Api, api_fetch: Any, gate: pathlib.Path
) -> None:
    job = (
        await api.post(
            "jobs", {"script": "gated", "kwargs": {"gate": str(gate), "fraction": 0.4}, "run": True}
        )
    ).json
    event = await first_event(api_fetch, job["id"], lambda k, d: k == "output")
    assert event["text"] == "before the gate\n"
    progress = await first_event(api_fetch, job["id"], lambda k, d: k == "progress")
    assert progress["progress"] == {"fraction": 0.4, "message": "waiting at the gate"}
    running = (await api.get(f"jobs/{job['id']}")).json
    assert running["status"] == "running"
    assert running["progress"] == {"fraction": 0.4, "message": "waiting at the gate"}
    await open_gate(gate)
    done = await api.wait(job["id"])
    assert done["status"] == "succeeded"
    assert done["result"] == "through"
    stdout = await api.get(f"jobs/{job['id']}/output/stdout")
    assert stdout.text == "before the gate\nafter the gate\n"


async def test_cancel_kills_a_running_job_and_its_children(api: Api, api_fetch: Any) -> None:
    job = (await api.post("jobs", {"script": "tree", "run": True})).json
    event = await first_event(
        api_fetch, job["id"], lambda k, d: k == "output" and d["stream"] == "stdout"
    )
    processes = [psutil.Process(int(p)) for p in event["text"].split()]
    assert len(processes) == 4
    assert (await api.post(f"jobs/{job['id']}/cancel")).json["status"] == "cancelled"
    _, alive = await asyncio.to_thread(psutil.wait_procs, processes, 10)
    assert not alive, [p.pid for p in alive]
    # the worker is free again: the next job runs
    assert (await api.run("echo", kwargs={"text": "next"}))["status"] == "succeeded"


async def test_a_timeout_ends_the_job_and_its_children(api: Api, api_fetch: Any) -> None:
    job = (await api.post("jobs", {"script": "tree", "run": True, "timeout": 1.5})).json
    event = await first_event(
        api_fetch, job["id"], lambda k, d: k == "output" and d["stream"] == "stdout"
    )
    processes = [psutil.Process(int(p)) for p in event["text"].split()]
    done = await api.wait(job["id"])
    assert done["status"] == "failed"
    assert done["error"]["type"] == "Timeout"
    _, alive = await asyncio.to_thread(psutil.wait_procs, processes, 10)
    assert not alive


async def test_data_reaches_workers_as_content(api: Api) -> None:
    """The workers run in another folder and read nothing of the server's disk: the
    datafile arrives as content and becomes a file in the job's folder on the worker."""
    body = b"x,y\n1,2\n3,4\n"
    assert (await api.put("datafiles/pairs.csv", raw=body)).code == 201
    info = await api.run("file_info", data={"type": "datafile", "name": "pairs.csv"})
    assert info["status"] == "succeeded", info
    assert info["result"] == {
        "name": "pairs.csv",
        "size": len(body),
        "absolute": True,
        "in_job_folder": True,
    }
    table = await api.run("describe_data", data={"type": "datafile", "name": "pairs.csv"})
    assert table["status"] == "succeeded", table
    assert table["result"]["type"] == "DataFrame"
    inline = await api.run(
        "describe_data", data={"type": "raw_data", "data": [1, 2, 3], "datatype": "json"}
    )
    assert inline["status"] == "succeeded", inline
    assert inline["result"]["type"] == "list"


@pytest.mark.parametrize(
    "jp_server_config",
    [{"scripts": {"write_files": "jobfiles_scripts:write_files"}}],
    indirect=True,
)
async def test_the_files_a_job_wrote_on_a_worker_are_listed_and_downloaded(api: Api) -> None:
    """The job's folder on the worker is gone when the job is reported finished: what
    the server lists and serves is the copy it took in, checksums and all."""
    job = await api.run("write_files", kwargs={"text": "from dask"})
    assert job["status"] == "succeeded", job
    listed = (await api.get(f"jobs/{job['id']}/files")).json["files"]
    assert [f["path"] for f in listed] == ["plot.png", "sub/deeper/notes.txt", "table.csv"]
    assert job["provenance"]["files"] == listed
    for entry in listed:
        body = (await api.call("GET", ("jobs", job["id"], "files", *entry["path"].split("/")))).body
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
        assert len(body) == entry["size"]
    saved = await api.get(f"jobs/{job['id']}/files/table.csv", params={"download": "1"})
    assert saved.code == 200
    assert saved.body == b"name,value\nfrom dask,1\n"
    assert "attachment" in saved.headers["Content-Disposition"]


@pytest.mark.parametrize(
    "jp_server_config",
    [
        {
            "scripts": {"write_files": "jobfiles_scripts:write_files"},
            "JobPolicy": {"max_files_size": 10_000},
        }
    ],
    indirect=True,
)
async def test_a_job_over_the_files_cap_on_a_worker_fails_and_keeps_none(api: Api) -> None:
    job = await api.run("write_files", kwargs={"size": 20_000})
    assert job["status"] == "failed"
    assert job["error"]["type"] == "FilesTooLarge"
    assert (await api.get(f"jobs/{job['id']}/files")).json["files"] == []


@pytest.mark.parametrize(
    "jp_server_config",
    [{"scripts": {"greet": {"notebook": str(NOTEBOOKS / "greet.ipynb")}}}],
    indirect=True,
)
async def test_a_notebook_job_runs_on_the_cluster_and_its_executed_notebook_comes_back(
    api: Api,
) -> None:
    job = await api.run("greet", kwargs={"name": "Ada", "times": 2, "loud": True})
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["greeting"] == "hello Ada!hello Ada!"
    assert (
        job["provenance"]["code_sha256"]
        == hashlib.sha256((NOTEBOOKS / "greet.ipynb").read_bytes()).hexdigest()
    )
    assert "first cell: Ada" in (await api.get(f"jobs/{job['id']}/output/stdout")).text
    files = {f["path"] for f in (await api.get(f"jobs/{job['id']}/files")).json["files"]}
    assert files == {"greet.ipynb", "greeting.txt"}
    executed = json.loads((await api.get(f"jobs/{job['id']}/files/greet.ipynb")).body)
    outputs = [o for cell in executed["cells"] for o in cell.get("outputs", [])]
    assert any("first cell: Ada" in "".join(o.get("text", "")) for o in outputs)


async def test_a_worker_killed_mid_job_fails_it_naming_the_worker(api: Api, api_fetch: Any) -> None:
    workers = {
        w["address"] for w in (await api.get("status")).json["executor"]["cluster"]["workers"]
    }
    job = (await api.post("jobs", {"script": "pid_then_sleep", "run": True})).json
    event = await first_event(
        api_fetch, job["id"], lambda k, d: k == "output" and d["stream"] == "stdout"
    )
    child = psutil.Process(int(event["text"]))
    dask_worker = child.parent()
    assert dask_worker is not None
    dask_worker.send_signal(signal.SIGKILL)
    done = await api.wait(job["id"])
    assert done["status"] == "failed"
    assert done["error"]["type"] == "WorkerLost"
    named = [w for w in workers if w in done["error"]["message"]]
    assert len(named) == 1, done["error"]
    # the job's process went with its worker, and the cluster goes on (its nanny starts a
    # new worker in the lost one's place)
    _, alive = await asyncio.to_thread(psutil.wait_procs, [child], 10)
    assert not alive
    assert (await api.run("echo", kwargs={"text": "after"}))["status"] == "succeeded"


# --- a scheduler that is not there ----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "jp_server_config",
    [
        {
            "DaskExecutor": {
                "scheduler_address": "tcp://127.0.0.1:1",
                "connect_timeout": 0.5,
                "describe_timeout": 0.5,
            }
        }
    ],
    indirect=True,
)
async def test_without_a_scheduler_new_jobs_get_503_with_the_reason(api: Api) -> None:
    answer = await api.post("jobs", {"script": "true", "run": True})
    assert answer.code == 503
    assert answer.json["error"] == "unavailable"
    assert "tcp://127.0.0.1:1" in answer.json["message"]
    assert "connects again by itself" in answer.json["message"]
    status = (await api.get("status")).json["executor"]
    assert status["connected"] is False
    assert "tcp://127.0.0.1:1" in status["reason"]
    # a job that is only created is kept, and nothing was queued
    created = await api.post("jobs", {"script": "true"})
    assert created.code == 201
    assert (await api.post(f"jobs/{created.json['id']}/run")).code == 503


RECONNECT_PORT = _free_port()


@pytest.mark.parametrize(
    "jp_server_config",
    [
        {
            "DaskExecutor": {
                "scheduler_address": f"tcp://127.0.0.1:{RECONNECT_PORT}",
                "connect_timeout": 2,
                "describe_timeout": 10,  # also how long the start waits for a scheduler
                "heartbeat_interval": 0.1,
            }
        }
    ],
    indirect=True,
)
async def test_function_scripts_appear_once_a_late_scheduler_is_reached(
    api: Api, tmp_path: pathlib.Path
) -> None:
    """The server starts while nothing listens at the scheduler's address: its function
    scripts cannot be described yet. Once a scheduler and a worker start there, they
    are described and offered, without a restart."""
    missing = await api.get("scripts/echo")
    assert missing.code == 404
    assert "could not be loaded" in missing.json["message"]
    address = f"tcp://127.0.0.1:{RECONNECT_PORT}"

    def cluster() -> list[subprocess.Popen[bytes]]:
        return [
            subprocess.Popen(
                [*DASK_SCHEDULER, "--host", "127.0.0.1", "--port", str(RECONNECT_PORT)],
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                [*DASK_WORKER, address, "--no-nanny", "--nthreads", "1", "--resources", "cores=1"],
                cwd=tmp_path,
                stderr=subprocess.DEVNULL,
            ),
        ]

    started = cluster()
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while (answer := await api.get("scripts/echo")).code != 200:
            assert asyncio.get_running_loop().time() < deadline, answer.json
            await asyncio.sleep(0.1)
        assert answer.json["process"] == "function"
        names = {s["name"] for s in (await api.get("scripts")).json["scripts"]}
        assert {"echo", "true"} <= names
        assert (await api.run("echo", kwargs={"text": "late"}))["result"] == "late"
    finally:
        for process in started:
            process.kill()
            await asyncio.to_thread(process.wait)


# --- executors on their own ---------------------------------------------------------------


async def test_a_script_not_importable_on_the_workers_names_the_module(
    tmp_path: pathlib.Path, dask_cluster: Any
) -> None:
    executor = DaskExecutor(
        scheduler_address=dask_cluster.scheduler_address,
        worker_env={"PYTHONPATH": str(tmp_path)},  # not where the test scripts are
    )
    recorder = Recorder()
    await executor.start(recorder, FolderJobLogs(root=str(tmp_path / "jobs")))
    try:
        executor.submit(task(tmp_path, "missing", "echo", text="x"))
        outcome = await recorder.outcome("missing")
    finally:
        await executor.stop()
    assert outcome.status == "failed"
    assert outcome.error["type"] == "ModuleNotFoundError"
    assert "jobserver_test_scripts" in outcome.error["message"]
    assert "on the Dask worker tcp://" in outcome.error["message"]


async def test_a_notebook_travels_with_its_task(tmp_path: pathlib.Path, dask_cluster: Any) -> None:
    """Once staged, the task needs nothing of the server's disk: the notebook file is
    removed before the job runs, and it runs all the same."""
    notebook = tmp_path / "greet.ipynb"
    notebook.write_bytes((NOTEBOOKS / "greet.ipynb").read_bytes())
    spec = describe_notebook("greet", str(notebook))["file"]
    executor = DaskExecutor(scheduler_address=dask_cluster.scheduler_address, worker_env=ENV)
    recorder = Recorder()
    files = FolderJobFiles(root=str(tmp_path / "jobs"))
    await executor.start(recorder, FolderJobLogs(root=str(tmp_path / "jobs")), files)
    try:
        staged = Task(job_id="nb", process="notebook", spec=spec, kwargs={"name": "Grace"})
        await executor.stage(staged)
        notebook.unlink()
        executor.submit(staged)
        outcome = await recorder.outcome("nb")
    finally:
        await executor.stop()
    assert outcome.status == "succeeded", outcome.error
    assert json.loads(outcome.result)["greeting"] == "hello Gracehello Grace"
    assert {f["path"] for f in outcome.provenance["files"]} == {"greet.ipynb", "greeting.txt"}
    assert b"first cell: Grace" in files.read("nb", "greet.ipynb", 0, 1 << 20)


async def test_the_executor_survives_a_scheduler_restart(tmp_path: pathlib.Path) -> None:
    """A scheduler process killed with SIGKILL, then started again at its address."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    started: list[subprocess.Popen[bytes]] = []

    def cluster() -> subprocess.Popen[bytes]:
        scheduler = subprocess.Popen(
            [*DASK_SCHEDULER, "--host", "127.0.0.1", "--port", str(port)],
            stderr=subprocess.DEVNULL,
        )
        worker = subprocess.Popen(
            [*DASK_WORKER, address, "--no-nanny", "--nthreads", "1", "--resources", "cores=1"],
            cwd=tmp_path,
            stderr=subprocess.DEVNULL,
        )
        started.extend([scheduler, worker])
        return scheduler

    scheduler = cluster()
    executor = DaskExecutor(
        scheduler_address=address, worker_env=ENV, heartbeat_interval=0.1, connect_timeout=5
    )
    recorder = Recorder()
    await executor.start(recorder, FolderJobLogs(root=str(tmp_path / "jobs")))
    try:
        executor.submit(task(tmp_path, "before", "echo", text="one"))
        assert (await recorder.outcome("before")).status == "succeeded"
        executor.submit(task(tmp_path, "cut", "sleepy", seconds=60))
        await recorder.start_of("cut")
        scheduler.kill()
        lost = await recorder.outcome("cut")
        assert lost.status == "failed"
        assert lost.error["type"] == "SchedulerLost"
        assert address in lost.error["message"]
        await until(lambda: executor.unavailable() is not None)
        assert address in executor.unavailable()
        assert executor.status()["connected"] is False
        # queued meanwhile: it waits for the scheduler instead of failing
        executor.submit(task(tmp_path, "waiting", "echo", text="two"))
        await asyncio.to_thread(scheduler.wait)
        cluster()
        assert (await recorder.outcome("waiting")).status == "succeeded"
        assert executor.unavailable() is None
    finally:
        await executor.stop()
        for process in started:
            process.kill()
            await asyncio.to_thread(process.wait)


async def test_a_cluster_the_executor_starts_is_stopped_with_it(tmp_path: pathlib.Path) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    executor = DaskExecutor(workers=1, cores_per_worker=1, worker_env=ENV)
    recorder = Recorder()
    await executor.start(recorder, FolderJobLogs(root=str(tmp_path / "jobs")))
    try:
        status = executor.status()
        assert status["started_by_server"] is True
        assert status["workers"] == 1
        executor.submit(task(tmp_path, "here", "echo", text="mine"))
        assert (await recorder.outcome("here")).status == "succeeded"
        started = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
        assert started  # the cluster's worker process (and the job process it keeps)
    finally:
        await executor.stop()
    _, alive = await asyncio.to_thread(psutil.wait_procs, started, 10)
    assert not alive, [p.pid for p in alive]


#: what the cluster factory below was asked to do
FACTORY_CALLS: list[str] = []


def session_cluster(address: str) -> Any:
    """A cluster factory as a site writes one (SLURM or dask-gateway cannot run here): it
    hands over the session's real scheduler, and says when it is closed."""
    import types

    FACTORY_CALLS.append(f"made {address}")
    return types.SimpleNamespace(
        scheduler_address=address, close=lambda: FACTORY_CALLS.append("closed")
    )


async def test_a_cluster_factory_is_called_and_what_it_made_is_closed(
    tmp_path: pathlib.Path, dask_cluster: Any
) -> None:
    FACTORY_CALLS.clear()
    address = dask_cluster.scheduler_address
    executor = DaskExecutor(
        cluster_factory="test_dask:session_cluster",
        cluster_kwargs={"address": address},
        worker_env=ENV,
    )
    recorder = Recorder()
    await executor.start(recorder, FolderJobLogs(root=str(tmp_path / "jobs")))
    try:
        assert executor.status()["cluster"]["scheduler"] == address
        executor.submit(task(tmp_path, "factory", "echo", text="x"))
        assert (await recorder.outcome("factory")).status == "succeeded"
    finally:
        await executor.stop()
    assert [f"made {address}", "closed"] == FACTORY_CALLS


def test_the_readme_configuration_examples_configure_the_executor() -> None:
    """The README's Dask configuration blocks (``py``: they are for a config file, not a
    kernel) set settings that exist, with values of the right kind."""
    import re

    from traitlets.config import Config

    readme = (TESTS.parent / "README.md").read_text()
    found = [b for b in re.findall(r"^```py\n(.*?)^```$", readme, re.M | re.S) if "Dask" in b]
    assert len(found) == 2
    for block in found:
        c = Config()
        exec(block, {"c": c})
        executor = DaskExecutor(config=c)
        for name, value in c.DaskExecutor.items():
            assert getattr(executor, name) == value
        assert c.JobServerApp.executor_class.endswith("DaskExecutor")
