"""File and eval processes, live output and progress, multicore, cancel and timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import shutil
import time
from typing import Any

import psutil
from helpers import Api, first_event, open_gate, parse_sse

REPO_DATA = pathlib.Path(__file__).parent.parent / "data"


# --- file processes ------------------------------------------------------------------------


async def test_a_shell_script_with_stdout_stderr_and_exit_codes(api: Api) -> None:
    ok = await api.run("io")
    assert ok["status"] == "succeeded"
    assert ok["process"] == "file"
    assert ok["exit_code"] == 0
    assert ok["progress"] == {"fraction": 0.5, "message": "halfway"}
    assert ok["provenance"]["version"] == "2.0"
    assert len(ok["provenance"]["code_sha256"]) == 64
    assert (await api.get(f"jobs/{ok['id']}/output/stdout")).text == "to stdout\nafter the gate\n"
    assert (await api.get(f"jobs/{ok['id']}/output/stderr")).text == "to stderr\n"

    failed = await api.run("io", kwargs={"code": 3})
    assert failed["status"] == "failed"
    assert failed["exit_code"] == 3
    assert failed["error"]["type"] == "ScriptFailed"
    assert failed["error"]["message"] == "the script exited with code 3"
    assert failed["error"]["detail"] == "to stderr\nfailing with 3\n"


async def test_a_python_file_script_gets_parameters_data_and_context(
    api: Api, jobserver: Any
) -> None:
    folder = pathlib.Path(jobserver.datafiles.data_dir)
    shutil.copy(REPO_DATA / "gauge.dat", folder / "gauge.dat")
    kwargs = {"n": 3, "flag": True, "items": [1, 2], "label": "x y"}
    options = await api.run(
        "args_options", kwargs=kwargs, data={"type": "datafile", "name": "gauge.dat"}
    )
    assert options["status"] == "succeeded", options["error"]
    result = options["result"]
    data = str((folder / "gauge.dat").resolve())
    assert result["argv"] == [
        data,
        "--n",
        "3",
        "--flag",
        "--items",
        "1",
        "--items",
        "2",
        "--label",
        "x y",
    ]
    assert result["data"] == data
    assert result["job_id"] == options["id"]
    assert result["cores"] == 1
    assert result["cwd"] == os.path.join(jobserver.jobs_dir, options["id"])
    assert options["progress"] == {"fraction": 0.25, "message": "argv read"}
    assert (await api.get(f"jobs/{options['id']}/output/stderr")).text == "stderr is not failure\n"

    positional = await api.run("args_positional", args=[7], kwargs={"items": [4]})
    assert positional["result"]["argv"] == ["7", "false", "[4]", "x y"]

    as_json = await api.run(
        "args_json", kwargs={"n": 1}, data={"type": "raw_data", "data": {"inline": [1, 2]}}
    )
    result = as_json["result"]
    assert result["data_content"] == {"inline": [1, 2]}
    assert result["parameters"] == {  # every value, defaults included
        "n": 1,
        "flag": False,
        "items": [],
        "label": "x y",
        "data": result["data"],
    }
    assert result["argv"] == [result["data"], os.path.join(result["cwd"], "parameters.json")]

    document = (await api.post("data", {"name": "d", "data": [1, 2, 3]})).json
    stored = await api.run(
        "args_options", kwargs={"n": 1}, data={"type": "mongodb", "id": document["id"]}
    )
    assert stored["result"]["data_content"] == [1, 2, 3]

    bad = await api.post("jobs", {"script": "args_options", "kwargs": {"n": "three"}})
    assert bad.code == 400
    assert bad.json["message"] == "parameter 'n' must be an integer, not 'three'"


async def test_file_scripts_come_from_specs_and_folders(api: Api) -> None:
    scripts = {s["name"]: s for s in (await api.get("scripts")).json["scripts"]}
    assert scripts["io"]["process"] == "file"
    assert scripts["io"]["description"].startswith("Shell script")
    assert scripts["io"]["parameters"]["properties"]["code"]["maximum"] == 255
    assert scripts["linecount"]["data"] == ["datafile"]  # an example an entry point registers
    assert "file" not in scripts["io"]  # where the executable is stays on the server
    broken = await api.get("scripts/broken")
    assert broken.code == 404
    assert "missing.sh does not exist" in broken.json["message"]
    true = await api.run("true")
    assert true["status"] == "succeeded"
    assert true["exit_code"] == 0


async def test_the_linecount_example_lists_the_top_of_a_large_file_every_time(
    api: Api,
) -> None:
    """Its pipeline ends early on purpose (it shows the top few): that is never a failure."""
    rows = "".join(f"station{i % 20000},{i}\n" for i in range(40000))
    upload = await api.put("datafiles/stations.csv", raw=rows.encode())
    assert upload.code == 201, upload
    created = [
        (
            await api.post(
                "jobs",
                {
                    "script": "linecount",
                    "kwargs": {"top": 3},
                    "data": {"type": "datafile", "name": "stations.csv"},
                    "run": True,
                },
            )
        ).json
        for _ in range(20)
    ]
    for job in created:
        done = await api.wait(job["id"])
        assert done["status"] == "succeeded", done["error"]
        assert done["result"] == {"lines": 40000, "words": 40000}
        stdout = (await api.get(f"jobs/{job['id']}/output/stdout")).text
        assert stdout.count("      2 station") == 3  # the top three, and no more


async def test_output_arrives_while_the_job_runs(
    api: Api, api_fetch: Any, gate: pathlib.Path
) -> None:
    job = (
        await api.post("jobs", {"script": "io", "kwargs": {"gate": str(gate)}, "run": True})
    ).json
    event = await first_event(
        api_fetch, job["id"], lambda k, d: k == "output" and "to stdout" in d["text"]
    )
    assert event["stream"] == "stdout"
    partial = await api.get(f"jobs/{job['id']}/output/stdout")
    assert partial.text == "to stdout\n"
    assert partial.headers["X-Jobserver-Complete"] == "false"
    running = await api.get(f"jobs/{job['id']}")
    assert running.json["status"] == "running"
    await open_gate(gate)
    done = await api.wait(job["id"])
    assert done["status"] == "succeeded"
    rest = await api.get(
        f"jobs/{job['id']}/output/stdout",
        params={"offset": partial.headers["X-Jobserver-Next-Offset"]},
    )
    assert rest.text == "after the gate\n"
    assert rest.headers["X-Jobserver-Complete"] == "true"


async def test_progress_is_visible_mid_run(api: Api, api_fetch: Any, gate: pathlib.Path) -> None:
    job = (
        await api.post(
            "jobs", {"script": "gated", "kwargs": {"gate": str(gate), "fraction": 0.4}, "run": True}
        )
    ).json
    event = await first_event(api_fetch, job["id"], lambda k, d: k == "progress")
    assert event["progress"] == {"fraction": 0.4, "message": "waiting at the gate"}
    record = (await api.get(f"jobs/{job['id']}")).json  # the record has it when the event goes out
    assert record["progress"] == {"fraction": 0.4, "message": "waiting at the gate"}
    assert record["status"] == "running"
    await open_gate(gate)
    assert (await api.wait(job["id"]))["result"] == "through"


async def test_cancelling_a_script_leaves_none_of_its_processes(api: Api, api_fetch: Any) -> None:
    job = (await api.post("jobs", {"script": "tree", "run": True})).json
    event = await first_event(
        api_fetch, job["id"], lambda k, d: k == "output" and d["stream"] == "stdout"
    )
    pids = [int(p) for p in event["text"].split()]
    assert len(pids) == 4
    processes = [psutil.Process(p) for p in pids]
    began = time.monotonic()
    assert (await api.post(f"jobs/{job['id']}/cancel")).json["status"] == "cancelled"
    _, alive = await asyncio.to_thread(psutil.wait_procs, processes, 2)
    assert not alive, [p.pid for p in alive]
    assert time.monotonic() - began < 2.5
    assert (await api.wait(job["id"]))["status"] == "cancelled"


async def test_a_timeout_ends_a_file_script_and_its_children(api: Api, api_fetch: Any) -> None:
    job = (await api.post("jobs", {"script": "tree", "run": True, "timeout": 1.5})).json
    event = await first_event(
        api_fetch, job["id"], lambda k, d: k == "output" and d["stream"] == "stdout"
    )
    processes = [psutil.Process(int(p)) for p in event["text"].split()]
    done = await api.wait(job["id"])
    assert done["status"] == "failed"
    assert done["error"]["type"] == "Timeout"
    _, alive = await asyncio.to_thread(psutil.wait_procs, processes, 2)
    assert not alive


# --- multicore -----------------------------------------------------------------------------


async def test_multicore_jobs_never_oversubscribe(api: Api) -> None:
    scripts = ["two_cores", "sleepy", "two_cores", "sleepy", "sleepy", "two_cores"]
    created = []
    for script in scripts:
        kwargs = {"seconds": 0.3}
        created.append(
            (await api.post("jobs", {"script": script, "kwargs": kwargs, "run": True})).json
        )
    jobs = [await api.wait(c["id"]) for c in created]
    assert all(j["status"] == "succeeded" for j in jobs)
    started = [j["started"] for j in jobs]
    assert started == sorted(started)  # in the order they were queued
    spans = [(j["started"], j["finished"], 2 if j["script"] == "two_cores" else 1) for j in jobs]
    for moment, _, _ in spans:
        in_use = sum(cores for start, end, cores in spans if start <= moment < end)
        assert in_use <= 2, (moment, spans)
    assert jobs[0]["result"]["cores"] == 2


async def test_a_multicore_function_gets_a_process_pool(api: Api) -> None:
    job = await api.run("parallel_squares", kwargs={"n": 6})
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["squares"] == [0, 1, 4, 9, 16, 25]
    assert 1 <= job["result"]["processes"] <= 2


# --- eval ----------------------------------------------------------------------------------


async def test_eval_is_refused_unless_enabled(api: Api) -> None:
    answer = await api.post("jobs", {"process": "eval", "code": "1 + 1", "run": True})
    assert answer.code == 403
    assert "eval jobs are disabled on this server" in answer.json["message"]
    assert (await api.get("jobs")).json["total"] == 0


async def test_eval_runs_for_an_admin_when_enabled(api: Api, jobserver: Any) -> None:
    jobserver.jobs.policy.allow_eval = True
    last = await api.run_eval(
        "import os\nx = 20\nx + len(data)", data={"type": "raw_data", "data": [1, 2]}
    )
    assert last["status"] == "succeeded"
    assert last["process"] == "eval"
    assert last["result"] == 22
    assert last["code"] == "import os\nx = 20\nx + len(data)"
    assert len(last["provenance"]["code_sha256"]) == 64
    named = await api.run_eval("result = {'pid': __import__('os').getpid()}")
    assert named["result"]["pid"] != os.getpid()  # never in the server process
    failing = await api.run_eval("1 / 0")
    assert failing["status"] == "failed"
    assert failing["error"]["type"] == "ZeroDivisionError"
    assert "<job code>" in failing["error"]["detail"]
    for body, message in [
        ({"process": "eval"}, "an eval job needs code"),
        ({"process": "eval", "code": "1", "script": "echo"}, "takes code, not a script"),
        ({"process": "eval", "code": "1", "kwargs": {"a": 1}}, "takes no args or kwargs"),
    ]:
        answer = await api.post("jobs", body)
        assert answer.code == 400, body
        assert message in answer.json["message"]


async def test_output_of_many_megabytes_is_read_in_pieces(api: Api) -> None:
    job = await api.run("print_lots", kwargs={"megabytes": 8})
    count = job["result"]
    total, offset = 0, 0
    while True:
        piece = await api.get(
            f"jobs/{job['id']}/output/stdout", params={"offset": offset, "limit": 3 << 20}
        )
        assert len(piece.body) <= 3 << 20
        total += piece.body.count(b"\n")
        offset = int(piece.headers["X-Jobserver-Next-Offset"])
        if piece.headers["X-Jobserver-Complete"] == "true":
            break
    assert total == count
    assert offset == 8 << 20


async def test_a_script_can_write_log_lines(api: Api) -> None:
    job = await api.run("logs", kwargs={"message": "loaded 3 files"})
    assert job["result"] == job["id"]
    line = (await api.get(f"jobs/{job['id']}/output/stderr")).text
    assert line.endswith("] loaded 3 files\n")
    assert line[0] == "["


async def test_eval_is_checked_again_when_a_created_job_is_run(api: Api, jobserver: Any) -> None:
    jobserver.jobs.policy.allow_eval = True
    created = (await api.post("jobs", {"process": "eval", "code": "1"})).json
    jobserver.jobs.policy.allow_eval = False
    refused = await api.post(f"jobs/{created['id']}/run")
    assert refused.code == 403
    assert "disabled" in refused.json["message"]


async def test_a_thread_left_running_never_reaches_the_next_job(api: Api) -> None:
    leaky = await api.run("leaky_thread")
    assert leaky["status"] == "succeeded"
    leaked_in = leaky["result"]
    later = [await api.run("worker_pid") for _ in range(4)]
    assert leaked_in not in [job["result"] for job in later]  # that worker was replaced
    for job in later:
        assert (await api.get(f"jobs/{job['id']}/output/stdout")).text == ""
        assert job["progress"] is None
    with contextlib.suppress(psutil.NoSuchProcess):  # it may be gone already
        await asyncio.to_thread(psutil.wait_procs, [psutil.Process(leaked_in)], 10)
    assert not psutil.pid_exists(leaked_in)


async def test_positional_values_never_go_missing(api: Api) -> None:
    refused = await api.post("jobs", {"script": "args_gap", "kwargs": {"limit": 99}})
    assert refused.code == 400
    assert "'limit' cannot reach args_gap" in refused.json["message"]
    assert "give 'input' too" in refused.json["message"]
    bare = await api.run("args_gap")
    assert bare["result"]["argv"] == []
    assert bare["provenance"]["parameters"] == {}  # what the script got, and nothing else
    full = await api.run("args_gap", kwargs={"input": "in.csv"})
    assert full["result"]["argv"] == ["in.csv", "10"]
    assert full["provenance"]["parameters"] == {"input": "in.csv", "limit": 10}


async def test_file_scripts_that_misbehave_say_how(api: Api) -> None:
    bad = await api.run("misbehaving", kwargs={"how": "bad_result"})
    assert bad["status"] == "failed"
    assert bad["exit_code"] == 0
    assert "wrote to $JUPYTER_JOBSERVER_RESULT is not JSON" in bad["error"]["message"]
    killed = await api.run("misbehaving", kwargs={"how": "killed"})
    assert killed["status"] == "failed"
    assert killed["error"]["message"] == "the script was killed by SIGKILL"


async def test_progress_from_a_python_file_script_is_folded(api: Api) -> None:
    job = (
        await api.post(
            "jobs", {"script": "misbehaving", "kwargs": {"how": "progress_storm"}, "run": True}
        )
    ).json
    events = parse_sse((await api.get(f"jobs/{job['id']}/events")).text)
    done = await api.wait(job["id"])
    assert done["status"] == "succeeded", done["error"]
    # the last report, a message alone, is kept as one (not read as 3 = 100 %)
    assert done["progress"] == {"fraction": None, "message": "3 files left"}
    reports = [data for kind, data in events if kind == "progress"]
    assert len(reports) < 200  # 20,001 reports folded into a few per tenth of a second


async def test_deleting_a_job_ends_its_event_stream(api: Api, api_fetch: Any) -> None:
    job = (
        await api.post("jobs", {"script": "sleepy", "kwargs": {"seconds": 60}, "run": True})
    ).json
    await api.wait_until(job["id"], "running")
    received = bytearray()
    connected = asyncio.Event()

    def on_chunk(chunk: bytes) -> None:
        received.extend(chunk)
        connected.set()  # the first event (the job as it is) has arrived

    stream = asyncio.ensure_future(
        api_fetch(f"jobs/{job['id']}/events", streaming_callback=on_chunk, request_timeout=30)
    )
    await asyncio.wait_for(connected.wait(), 30)
    assert (await api.delete(f"jobs/{job['id']}")).code == 204
    await asyncio.wait_for(stream, 30)  # the stream ends, rather than hanging on
    events = parse_sse(received.decode())
    assert events[0][0] == "status"
    assert events[-1][0] == "end"
    final = events[-1][1]["job"]
    assert final is None or final["status"] == "cancelled"  # gone, or as it was last seen


async def test_quick_progress_from_a_file_script_keeps_the_worker(api: Api, jobserver: Any) -> None:
    before = sorted(jobserver.executor.worker_pids())
    for _ in range(3):
        job = await api.run("quick_progress")
        assert job["status"] == "succeeded", job["error"]
        assert job["progress"] == {"fraction": 0.3, "message": "c"}  # the last one counts
    assert sorted(jobserver.executor.worker_pids()) == before
