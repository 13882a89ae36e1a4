"""Hostile and careless input: every value out of bounds is the client's mistake (a 4xx
with a message), is refused before anything is reserved, queued or run, and leaves no
worker and no limit counter taken.

After each attack the test checks, as a user would notice it, that the server still has
both its workers and the whole active-job allowance: two jobs are accepted (the limit is
two) and both start running.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
from collections.abc import Callable
from typing import Any

import pytest
from helpers import Api, jobserver_config

LIMIT = 2  # active jobs per user, and workers


@pytest.fixture
def jp_server_config(tmp_path: pathlib.Path) -> dict[str, Any]:
    return jobserver_config(tmp_path, JobPolicy={"max_active_jobs_per_user": LIMIT})


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


async def assert_all_free(api: Api, tmp_path: pathlib.Path) -> None:
    """Both workers and the whole allowance are free: two gated jobs are accepted and
    both reach ``running``; then they are let through and succeed."""
    gates = []
    ids = []
    for i in range(LIMIT):
        gate = tmp_path / f"gate-{os.urandom(4).hex()}-{i}"
        os.mkfifo(gate)
        gates.append(gate)
        created = await api.post(
            "jobs", {"script": "gated", "kwargs": {"gate": str(gate)}, "run": True}
        )
        assert created.code == 201, created  # the limit counter was not left taken
        ids.append(created.json["id"])
    try:
        over = await api.post("jobs", {"script": "echo", "kwargs": {"text": "x"}, "run": True})
        assert over.code == 429, over  # the limit is live: exactly two were free
        assert "max_active_jobs_per_user" in over.json["message"]
        for job_id in ids:
            job = await api.wait_until(job_id, "running", 60)
            assert job["status"] == "running", job  # a worker was free for it
    finally:
        await asyncio.gather(*(asyncio.to_thread(_open_gate, g) for g in gates))
    for job_id in ids:
        assert (await api.wait(job_id))["status"] == "succeeded"
    assert (await api.get("jobs", params={"status": "queued"})).json["total"] == 0


def _open_gate(gate: pathlib.Path) -> None:
    with open(gate, "w") as f:
        f.write("go\n")


async def assert_refused(answer: Any, code: int, *words: str) -> None:
    assert answer.code == code, answer
    body = answer.json
    assert body["error"] and body["message"], body
    for word in words:
        assert word in body["message"], body


# --- values out of bounds ---------------------------------------------------------------


async def test_deeply_nested_inline_data_jams_nothing(api: Api, tmp_path: pathlib.Path) -> None:
    deep = {"type": "raw_data", "data": nested(500)}
    for _ in range(2 * LIMIT):  # on a 2-worker server, two such requests jammed it for good
        answer = await api.post("jobs", {"script": "describe_data", "data": deep, "run": True})
        await assert_refused(answer, 400, "nest deeper")
    assert (await api.get("jobs")).json["total"] == 0
    await assert_all_free(api, tmp_path)


@pytest.mark.parametrize(
    "body",
    [
        {"script": "echo", "args": [1], "kwargs": {"b": "BIG"}, "run": True},
        {"script": "echo", "args": ["BIG"], "run": True},
        {"script": "echo", "kwargs": {"text": "x"}, "timeout": "BIG", "run": True},
        {"script": "describe_data", "data": {"type": "raw_data", "data": [1, "-BIG"]}, "run": True},
        {"script": "echo", "kwargs": {"text": 2**64}, "run": True},
    ],
    ids=["kwargs", "args", "timeout", "inline-data", "integer"],
)
async def test_numbers_out_of_range_are_refused_before_anything_runs(
    api: Api, tmp_path: pathlib.Path, body: dict[str, Any]
) -> None:
    raw = json.dumps(body).replace('"BIG"', "1e400").replace('"-BIG"', "-1e400").encode()
    answer = await api.post("jobs", raw=raw)
    await assert_refused(answer, 400)
    assert (await api.get("jobs")).json["total"] == 0  # no job ran without a record
    await assert_all_free(api, tmp_path)


async def test_lone_surrogates_are_refused_everywhere(api: Api) -> None:
    bad = '"\\ud800"'
    cases = [
        ("POST", "jobs", '{"script": "echo", "kwargs": {"text": BAD}, "run": true}'),
        ("POST", "jobs/query", '{"filter": {"script": BAD}}'),
        ("POST", "jobs/query", '{"filter": {BAD: 1}}'),
        ("POST", "data", '{"name": "x", "data": [BAD]}'),
        ("POST", "data", '{"name": BAD, "data": 1}'),
    ]
    for method, path, raw in cases:
        answer = await api.call(method, path, raw=raw.replace("BAD", bad).encode())
        await assert_refused(answer, 400, "Unicode")
    assert (await api.get("jobs")).json["total"] == 0
    assert (await api.get("data")).json["total"] == 0


async def test_documents_take_the_same_limits(api: Api) -> None:
    deep = await api.post("data", {"name": "deep", "data": nested(100)})
    await assert_refused(deep, 400, "nest deeper")
    huge = await api.post("data", raw=b'{"name": "n", "data": [1e400]}')
    await assert_refused(huge, 400, "finite")
    assert (await api.get("data")).json["total"] == 0


# --- filters ------------------------------------------------------------------------------


def _not_chain(depth: int) -> dict[str, Any]:
    spec: dict[str, Any] = {"$eq": "x"}
    for _ in range(depth):
        spec = {"$not": spec}
    return {"script": spec}


@pytest.mark.parametrize(
    "spec",
    [
        _not_chain(19),
        {"tags": {"$all": [f"t{i}" for i in range(1000)]}},
        {"$or": [{"script": f"s{i}"} for i in range(1000)]},
        {"$and": [{"$or": [{"script": f"s{i}"} for i in range(40)]} for _ in range(40)]},
    ],
    ids=["not-depth", "all-width", "or-width", "total-terms"],
)
async def test_filters_too_deep_or_wide_are_the_clients_mistake(api: Api, spec: Any) -> None:
    await assert_refused(await api.post("jobs/query", {"filter": spec}), 400)
    await assert_refused(await api.call("DELETE", "jobs", {"filter": spec}), 400)


async def test_many_tags_in_a_query_are_the_clients_mistake(api: Api) -> None:
    tags = ",".join(f"t{i}" for i in range(1000))
    await assert_refused(await api.get("jobs", params={"tag": tags}), 400, "tags")


# --- an injected failure at each step of a submission ---------------------------------------


def _once(real: Callable[..., Any], exc: BaseException) -> Callable[..., Any]:
    """``real``, but failing the first time it is called."""
    calls = 0

    def maybe(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise exc
        return real(*args, **kwargs)

    return maybe


def _once_async(real: Callable[..., Any], exc: BaseException) -> Callable[..., Any]:
    calls = 0

    async def maybe(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise exc
        return await real(*args, **kwargs)

    return maybe


class _FailingPickler:
    """Stands in for the pickler once: the fault a task too deep to pickle caused."""

    failed = False

    @classmethod
    def dumps(cls, obj: Any) -> Any:
        from multiprocessing.reduction import ForkingPickler

        if not cls.failed:
            cls.failed = True
            raise RecursionError("maximum recursion depth exceeded while pickling an object")
        return ForkingPickler.dumps(obj)


STEPS = ["store-insert", "data-resolve", "stage", "submit", "send-to-worker"]


@pytest.mark.parametrize("step", STEPS)
async def test_a_failure_at_any_step_of_a_submission_frees_everything(
    api: Api,
    jobserver: Any,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
) -> None:
    # a fake, but only for the injected fault: each stands in for one failure once
    jobs = jobserver.jobs
    body: dict[str, Any] = {"script": "echo", "kwargs": {"text": "x"}, "run": True}
    if step == "store-insert":
        store = jobs.store.store
        monkeypatch.setattr(store, "insert_job", _once(store.insert_job, OSError("disk full")))
    elif step == "data-resolve":
        data = jobs.lifecycle.data
        monkeypatch.setattr(data, "resolve", _once_async(data.resolve, OSError("unreadable")))
        body = {"script": "describe_data", "data": {"type": "raw_data", "data": [1]}, "run": True}
    elif step == "stage":
        executor = jobs.executor
        monkeypatch.setattr(executor, "stage", _once_async(executor.stage, OSError("no room")))
    elif step == "submit":
        executor = jobs.executor
        monkeypatch.setattr(executor, "submit", _once(executor.submit, RuntimeError("broken")))
    else:
        from jupyter_jobserver.executor.local import pool

        monkeypatch.setattr(pool, "ForkingPickler", _FailingPickler)
    answer = await api.post("jobs", body, params={"wait": 30})
    if step == "store-insert":
        assert answer.code == 500, answer  # the store failed: nothing was created
        assert (await api.get("jobs")).json["total"] == 0
    else:
        assert answer.code == 201, answer
        job = answer.json
        assert job["status"] == "failed", job  # it says why, and is not left queued
        assert (await api.get(f"jobs/{job['id']}")).json["status"] == "failed"
    await assert_all_free(api, tmp_path)


# --- bodies over an operation's limit ---------------------------------------------------------


@pytest.fixture
def listening(
    jobserver: Any, jp_serverapp: Any, http_server_client: Any, jp_http_port: int, jp_base_url: str
) -> tuple[int, str, str]:
    """Port, base URL and token of the test server, for a client of raw HTTP."""
    return jp_http_port, jp_base_url, jp_serverapp.identity_provider.token


async def _raw_request(
    listening: tuple[int, str, str],
    path: str,
    headers: dict[str, str],
    chunks: int = 0,
    method: str = "POST",
) -> tuple[int, dict[str, Any], int]:
    """Send a request of which the body is announced (``Content-Length``, never sent)
    or sent in 64 KiB chunks until the server answers; the status, the JSON answer,
    and how many bytes of body were sent before the answer came."""
    port, base_url, token = listening
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"{method} {base_url}jobserver/api/{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += f"Authorization: token {token}\r\nContent-Type: application/json\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode())
    answer = asyncio.ensure_future(_read_answer(reader))
    sent = 0
    piece = b" " * (1 << 16)
    try:
        while chunks and not answer.done() and sent < chunks * len(piece):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            sent += len(piece)
    except ConnectionError:
        pass  # the server has answered and closed: what it said is read below
    status, body = await answer
    writer.close()
    return status, body, sent


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    lines = head.split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if line)
    length = int({k.lower(): v for k, v in headers.items()}["content-length"])
    return int(lines[0].split()[1]), json.loads(await reader.readexactly(length))


@pytest.mark.parametrize("path", ["jobs", "data", "jobs/query"])
async def test_a_body_announced_over_the_limit_is_refused_unread(
    listening: tuple[int, str, str], jobserver: Any, path: str
) -> None:
    status, body, _ = await _raw_request(listening, path, {"Content-Length": str(100 << 20)})
    assert status == 413
    assert body["error"] == "too_large"
    assert "at most" in body["message"]


@pytest.mark.parametrize("path", ["jobs", "data", "datafiles/chunked.csv"])
async def test_a_chunked_body_is_refused_once_it_passes_the_limit(
    listening: tuple[int, str, str], jobserver: Any, path: str
) -> None:
    jobserver.jobs.policy.max_request_size = 1 << 20
    jobserver.documents.max_document_size = 1 << 20
    jobserver.datafiles.max_datafile_size = 1 << 20
    method = "PUT" if path.startswith("datafiles") else "POST"
    status, body, sent = await _raw_request(
        listening, path, {"Transfer-Encoding": "chunked"}, chunks=1000, method=method
    )
    assert status == 413
    assert body["error"] == "too_large"
    assert sent < 64 << 20  # answered long before the body (64 MiB) was all sent


# --- a worker killed mid-job ------------------------------------------------------------------


def _wait_gone(pid: int, timeout: float = 30) -> bool:
    """Wait for process ``pid`` to end (a pidfd is readable once it has), or be a zombie."""
    import select

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        if select.select([fd], [], [], timeout)[0]:
            return True
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    finally:
        os.close(fd)


async def test_a_worker_killed_mid_job_leaves_no_process_behind(
    api: Api, jobserver: Any, tmp_path: pathlib.Path
) -> None:
    import signal

    # children in sessions of their own: a process group kill would not reach them
    created = await api.post("jobs", {"script": "spawn_children", "run": True})
    job_id = created.json["id"]
    await api.wait_until(job_id, "running")
    follower = await api.get(f"jobs/{job_id}/output/stdout")
    while not follower.text.strip():  # the pids come as the first line; follow the output
        await api.get(f"jobs/{job_id}", params={"wait": 0.5})
        follower = await api.get(f"jobs/{job_id}/output/stdout")
    spawned = [int(p) for p in follower.text.split()]
    for worker in jobserver.jobs.executor.worker_pids():  # the idle one is replaced too
        os.kill(worker, signal.SIGKILL)  # as the out-of-memory killer would
    job = await api.wait(job_id)
    assert job["status"] == "failed"
    assert job["error"]["type"] == "WorkerDied"
    for pid in spawned:
        assert await asyncio.to_thread(_wait_gone, pid), f"process {pid} outlived its worker"
    await assert_all_free(api, tmp_path)


# --- load ---------------------------------------------------------------------------------


async def test_fifty_clients_at_once_get_no_errors(
    api: Api, jobserver: Any, tmp_path: pathlib.Path
) -> None:
    """A short load test, bounded by work rather than time: of 50 clients at once, 25
    create and run a job, read it, list and query, and 25 read lists; every answer is a
    success. (The full form, with memory, is benchmarks/bench_load.py.)"""

    async def client(i: int) -> list[int]:
        codes = []
        created = await api.post(
            "jobs", {"script": "echo", "kwargs": {"text": f"c{i}"}, "run": True, "tags": [f"c{i}"]}
        )
        codes.append(created.code)
        job_id = created.json["id"]
        done = await api.get(f"jobs/{job_id}", params={"wait": 60})
        codes.append(done.code)
        assert done.json["status"] == "succeeded", done.json
        codes.append((await api.get("jobs", params={"tag": f"c{i}"})).code)
        codes.append((await api.post("jobs/query", {"filter": {"tags": f"c{i}"}})).code)
        codes.append((await api.get(f"jobs/{job_id}/output/stdout")).code)
        return codes

    jobserver.jobs.policy.max_active_jobs_per_user = 0  # 50 at once
    results = await asyncio.gather(
        *(client(i) for i in range(25)), *(_reader(api) for _ in range(25))
    )
    assert all(200 <= code < 300 for codes in results for code in codes), results
    assert (await api.get("jobs")).json["total"] == 25
    jobserver.jobs.policy.max_active_jobs_per_user = LIMIT
    await assert_all_free(api, tmp_path)


async def _reader(api: Api) -> list[int]:
    return [
        (await api.get("jobs")).code,
        (await api.get("scripts")).code,
        (await api.get("datafiles")).code,
        (await api.get("data")).code,
    ]
