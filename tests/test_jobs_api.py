"""The job lifecycle through the REST API of a real Jupyter server."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
from helpers import Api, parse_sse

#: these tests run on the SQLite store and on the MongoDB store (see conftest.py)
EVERY_STORE = True

#: the longest a test waits for something it is sure to see, on a busy machine
STEP = 120


async def test_create_edit_run_and_read_the_record(api: Api) -> None:
    created = await api.post("jobs", {"script": "echo", "kwargs": {"text": "hi"}, "tags": ["t1"]})
    assert created.code == 201
    job = created.json
    assert job["status"] == "created"
    assert created.headers["Location"].endswith(f"/jobserver/api/jobs/{job['id']}")
    assert job["owner"] and job["created"].endswith("Z")
    assert job["queued"] is None and job["result"] is None

    edited = await api.patch(f"jobs/{job['id']}", {"kwargs": {"text": "ho", "times": 3}})
    assert edited.code == 200
    assert edited.json["kwargs"] == {"text": "ho", "times": 3}
    assert edited.json["edited"] is not None

    ran = await api.post(f"jobs/{job['id']}/run")
    assert ran.code == 202
    assert ran.json["status"] == "queued"

    done = await api.wait(job["id"])
    assert done["status"] == "succeeded"
    assert done["result"] == "hohoho"
    assert done["error"] is None
    assert done["created"] <= done["queued"] <= done["started"] <= done["finished"]
    assert 0 <= done["time_sec"] < 30
    provenance = done["provenance"]
    assert provenance["script"] == "echo"
    assert provenance["parameters"] == {"text": "ho", "times": 3}
    assert len(provenance["code_sha256"]) == 64
    assert provenance["python"].count(".") == 2
    assert "jupyter_jobserver" in provenance
    assert "code" not in provenance

    stdout = await api.get(f"jobs/{job['id']}/output/stdout")
    assert stdout.text == "ho\nho\nho\n"
    assert stdout.headers["X-Jobserver-Complete"] == "true"
    stderr = await api.get(f"jobs/{job['id']}/output/stderr")
    assert stderr.text == "echoed 3 time(s)\n"


async def test_a_created_job_cannot_run_twice_or_be_edited_after_it_ran(api: Api) -> None:
    job = await api.run("echo", kwargs={"text": "a"})
    again = await api.post(f"jobs/{job['id']}/run")
    assert again.code == 409
    assert "already succeeded" in again.json["message"]
    edit = await api.patch(f"jobs/{job['id']}", {"kwargs": {"text": "b"}})
    assert edit.code == 409
    assert edit.json["error"] == "conflict"
    # sharing and labelling a finished job is still allowed
    share = await api.patch(f"jobs/{job['id']}", {"public": True, "tags": ["done", "done"]})
    assert share.code == 200
    assert share.json["public"] is True
    assert share.json["tags"] == ["done"]


async def test_an_exception_fails_the_job_with_its_traceback(api: Api) -> None:
    job = await api.run("raises", kwargs={"message": "no good"})
    assert job["status"] == "failed"
    assert job["error"]["type"] == "ValueError"
    assert job["error"]["message"] == "no good"
    assert "in inner" in job["error"]["detail"]
    assert "worker.py" not in job["error"]["detail"]
    stderr = await api.get(f"jobs/{job['id']}/output/stderr")
    assert "ValueError: no good" in stderr.text


async def test_results_are_stored_as_documented_json(api: Api) -> None:
    frame = await api.run("results", kwargs={"kind": "dataframe"})
    result = frame["result"]
    assert result["$type"] == "dataframe"
    assert result["columns"] == ["x", "n"]
    assert result["data"] == [[1.5, 1], [None, 2], [3.0, 3]]
    assert result["index"][0].startswith("2026-01-01T00:00:00")
    assert result["index_name"] == "day"

    array = await api.run("results", kwargs={"kind": "ndarray"})
    assert array["result"] == {
        "$type": "ndarray",
        "dtype": "int32",
        "shape": [2, 3],
        "data": [[0, 1, 2], [3, 4, 5]],
    }
    special = await api.run("results", kwargs={"kind": "special"})
    assert special["result"] == {"nan": None, "inf": None, "int64": 5, "set": [1]}
    obj = await api.run("results", kwargs={"kind": "object"})
    assert obj["status"] == "succeeded"
    assert obj["result"]["$type"] == "repr"
    assert obj["result"]["type"] == "builtins.object"


async def test_list_filters_pages_and_sorts(api: Api) -> None:
    ids = []
    for i in range(5):
        job = await api.post(
            "jobs",
            {"script": "echo", "kwargs": {"text": str(i)}, "tags": ["odd" if i % 2 else "even"]},
        )
        ids.append(job.json["id"])
    await api.run("raises")

    everything = await api.get("jobs")
    assert everything.json["total"] == 6
    assert [j["id"] for j in everything.json["jobs"][1:]] == ids[::-1]  # newest first
    assert all("result" not in j for j in everything.json["jobs"])

    page = await api.get("jobs", params={"limit": 2, "offset": 1, "sort": "created"})
    assert [j["id"] for j in page.json["jobs"]] == ids[1:3]
    assert page.json["total"] == 6

    failed = await api.get("jobs", params={"status": "failed"})
    assert [j["script"] for j in failed.json["jobs"]] == ["raises"]
    odd = await api.get("jobs", params={"tag": "odd", "script": "echo"})
    assert sorted(j["id"] for j in odd.json["jobs"]) == sorted([ids[1], ids[3]])
    several = await api.get("jobs", params={"status": "created,failed"})
    assert several.json["total"] == 6

    for params, message in [
        ({"sort": "kwargs"}, "cannot sort by 'kwargs'"),
        ({"limit": "0"}, "limit must be between 1 and 1000"),
        ({"limit": "ten"}, "limit must be a whole number"),
        ({"status": "sleeping"}, "status: unknown status 'sleeping'"),
    ]:
        bad = await api.get("jobs", params=params)
        assert bad.code == 400, params
        assert message in bad.json["message"]


async def test_query_with_a_mongodb_style_filter(api: Api) -> None:
    a = (
        await api.post("jobs", {"script": "echo", "kwargs": {"text": "a"}, "tags": ["x", "y"]})
    ).json
    b = await api.run("echo", kwargs={"text": "b"}, tags=["y"])
    c = await api.run("raises")

    async def ids(filter: dict, **extra: object) -> list[str]:
        answer = await api.post("jobs/query", {"filter": filter, "sort": {"created": 1}, **extra})
        assert answer.code == 200, answer
        return [j["id"] for j in answer.json["jobs"]]

    assert await ids({"tags": "y"}) == [a["id"], b["id"]]
    assert await ids({"tags": {"$all": ["x", "y"]}}) == [a["id"]]
    assert await ids({"status": {"$in": ["failed", "created"]}}) == [a["id"], c["id"]]
    assert await ids({"$or": [{"script": "raises"}, {"tags": "x"}]}) == [a["id"], c["id"]]
    assert await ids({"started": None}) == [a["id"]]
    assert await ids({"started": {"$exists": True}, "status": {"$ne": "failed"}}) == [b["id"]]
    assert await ids({"created": {"$gte": b["created"]}}) == [b["id"], c["id"]]
    assert await ids({"created": {"$gte": "2000-01-01"}, "tags": {"$nin": ["x"]}}) == [
        b["id"],
        c["id"],
    ]
    assert await ids({"time_sec": {"$not": {"$gte": 0}}}) == [a["id"]]
    assert await ids({"$nor": [{"script": "echo"}]}) == [c["id"]]
    assert await ids({}, limit=1, offset=1) == [b["id"]]

    for filter, message in [
        ({"result": 1}, "cannot filter on 'result'"),
        ({"status": {"$regex": "f.*"}}, "unknown operator '$regex'"),
        ({"$where": "1"}, "unknown operator '$where'"),
        ({"$expr": {"$eq": ["$status", "failed"]}}, "unknown operator '$expr'"),
        ({"$function": {"body": "1", "args": [], "lang": "js"}}, "unknown operator '$function'"),
        ({"status": {"$accumulator": {}}}, "unknown operator '$accumulator'"),
        ({"$or": [{"$where": "sleep(1000)"}]}, "unknown operator '$where'"),
        ({"status": {"$not": {"$where": "1"}}}, "unknown operator '$where'"),
        ({"status": {"$in": "failed"}}, "$in takes an array"),
        ({"created": {"$gt": "yesterday"}}, "is not an ISO 8601 time"),
        ({"public": "yes"}, "needs true or false"),
        ({"$or": []}, "non-empty array"),
    ]:
        bad = await api.post("jobs/query", {"filter": filter})
        assert bad.code == 400, filter
        assert message in bad.json["message"]
    bad = await api.post("jobs/query", {"filter": {}, "limit": 5000})
    assert bad.code == 400
    assert "limit" in bad.json["message"]


async def test_cancel_a_running_job(api: Api) -> None:
    job = (
        await api.post("jobs", {"script": "sleepy", "kwargs": {"seconds": 60}, "run": True})
    ).json
    running = await api.wait_until(job["id"], "running")
    assert running["status"] == "running"
    began = time.monotonic()
    cancelled = await api.post(f"jobs/{job['id']}/cancel")
    assert cancelled.code == 202
    assert cancelled.json["status"] == "cancelled"
    assert time.monotonic() - began < 2
    final = await api.wait(job["id"])
    assert final["status"] == "cancelled"
    assert final["error"]["type"] == "Cancelled"
    assert final["finished"] is not None
    again = await api.post(f"jobs/{job['id']}/cancel")
    assert again.code == 409
    # the worker was replaced: the next job runs
    assert (await api.run("echo", kwargs={"text": "next"}))["result"] == "next"


async def test_cancel_a_created_or_queued_job(api: Api) -> None:
    created = (await api.post("jobs", {"script": "echo", "kwargs": {"text": "x"}})).json
    assert (await api.post(f"jobs/{created['id']}/cancel")).json["status"] == "cancelled"
    # fill both workers, then queue one more and cancel it before it starts
    blockers = [
        (await api.post("jobs", {"script": "sleepy", "kwargs": {"seconds": 60}, "run": True})).json
        for _ in range(2)
    ]
    queued = (await api.post("jobs", {"script": "echo", "kwargs": {"text": "q"}, "run": True})).json
    assert (await api.get(f"jobs/{queued['id']}")).json["status"] == "queued"
    assert (await api.post(f"jobs/{queued['id']}/cancel")).json["status"] == "cancelled"
    for blocker in blockers:
        await api.post(f"jobs/{blocker['id']}/cancel")
    final = await api.wait(queued["id"])
    assert final["status"] == "cancelled"
    assert final["started"] is None
    assert not os.path.exists(os.path.join("never", "started"))


async def test_timeout_fails_the_job_and_says_why(api: Api) -> None:
    began = time.monotonic()
    job = await api.run("sleepy", kwargs={"seconds": 60}, timeout=1)
    assert job["status"] == "failed"
    assert job["error"]["type"] == "Timeout"
    assert "timeout of 1 s" in job["error"]["message"]
    assert time.monotonic() - began < 10
    stdout = await api.get(f"jobs/{job['id']}/output/stdout")
    assert stdout.text == "started\n"


async def test_a_crashing_script_fails_only_its_job(api: Api) -> None:
    for how, words in [
        ("exit", "exited with code 7"),
        ("segfault", "SIGSEGV"),
        ("sigkill", "SIGKILL (the system may have run out of memory)"),
    ]:
        job = await api.run("kill_self", kwargs={"how": how})
        assert job["status"] == "failed", how
        assert job["error"]["type"] == "WorkerDied"
        assert words in job["error"]["message"]
        assert (await api.run("echo", kwargs={"text": how}))["result"] == how
    segfault = await api.get("jobs", params={"script": "kill_self"})
    crashed = next(j for j in segfault.json["jobs"] if j["kwargs"] == {"how": "segfault"})
    stderr = await api.get(f"jobs/{crashed['id']}/output/stderr")
    assert "Fatal Python error: Segmentation fault" in stderr.text


async def test_rerun_makes_a_new_job_with_the_same_parameters(api: Api) -> None:
    first = await api.run("echo", kwargs={"text": "again", "times": 2}, tags=["r"])
    rerun = await api.post(f"jobs/{first['id']}/rerun")
    assert rerun.code == 202
    second = rerun.json
    assert second["id"] != first["id"]
    assert second["rerun_of"] == first["id"]
    assert rerun.headers["Location"].endswith(second["id"])
    done = await api.wait(second["id"])
    assert done["result"] == first["result"]
    assert done["kwargs"] == first["kwargs"]
    assert done["tags"] == ["r"]
    assert done["provenance"]["code_sha256"] == first["provenance"]["code_sha256"]
    not_run = await api.post(f"jobs/{first['id']}/rerun", {"run": False})
    assert not_run.json["status"] == "created"


async def test_delete_one_many_and_a_running_one(api: Api, jobserver: object) -> None:
    job = await api.run("echo", kwargs={"text": "bye"})
    folder = os.path.join(jobserver.jobs_dir, job["id"])
    assert os.path.isdir(folder)
    gone = await api.delete(f"jobs/{job['id']}")
    assert gone.code == 204
    assert (await api.get(f"jobs/{job['id']}")).code == 404
    assert not os.path.exists(folder)

    running = (
        await api.post("jobs", {"script": "sleepy", "kwargs": {"seconds": 60}, "run": True})
    ).json
    await api.wait_until(running["id"], "running")
    assert (await api.delete(f"jobs/{running['id']}")).code == 204
    assert (await api.get(f"jobs/{running['id']}")).code == 404
    assert (await api.run("echo", kwargs={"text": "still works"}))["status"] == "succeeded"

    for _ in range(3):
        await api.run("raises")
    many = await api.delete("jobs", params={"status": "failed"})
    assert many.code == 200
    assert many.json == {"deleted": 3}
    left = await api.get("jobs")
    assert [j["script"] for j in left.json["jobs"]] == ["echo"]


async def test_output_can_be_read_in_pieces(api: Api) -> None:
    job = await api.run("echo", kwargs={"text": "é" * 10, "times": 2})
    whole = (await api.get(f"jobs/{job['id']}/output/stdout")).body
    assert whole.decode() == ("é" * 10 + "\n") * 2
    pieces, offset = [], 0
    while True:
        piece = await api.get(
            f"jobs/{job['id']}/output/stdout", params={"offset": offset, "limit": 5}
        )
        pieces.append(piece.text)  # every piece decodes on its own
        offset = int(piece.headers["X-Jobserver-Next-Offset"])
        if piece.headers["X-Jobserver-Complete"] == "true":
            break
    assert "".join(pieces).encode() == whole
    assert offset == len(whole)
    unknown = await api.get(f"jobs/{job['id']}/output/stdlog")
    assert unknown.code == 404
    assert "stdout, stderr" in unknown.json["message"]
    bad = await api.get(f"jobs/{job['id']}/output/stdout", params={"offset": "-1"})
    assert bad.code == 400


async def test_events_stream_status_progress_and_output(api: Api) -> None:
    job = (
        await api.post("jobs", {"script": "progress_steps", "kwargs": {"steps": 3}, "run": True})
    ).json
    stream = await api.get(f"jobs/{job['id']}/events")
    assert stream.code == 200
    assert stream.headers["Content-Type"] == "text/event-stream"
    events = parse_sse(stream.text)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "status"
    assert kinds[-1] == "end"
    assert events[-1][1]["job"]["status"] == "succeeded"
    fractions = [data["progress"]["fraction"] for kind, data in events if kind == "progress"]
    assert fractions[-1] == 1.0
    assert fractions == sorted(fractions)
    record = await api.wait(job["id"])
    assert record["progress"] == {"fraction": 1.0, "message": "step 3"}


async def test_events_of_a_finished_job_end_at_once(api: Api) -> None:
    job = await api.run("echo", kwargs={"text": "done", "times": 2})
    events = parse_sse((await api.get(f"jobs/{job['id']}/events")).text)
    assert [k for k, _ in events] == ["status", "output", "output", "end"]
    outputs = {d["stream"]: d["text"] for k, d in events if k == "output"}
    assert outputs == {"stdout": "done\ndone\n", "stderr": "echoed 2 time(s)\n"}


async def test_wait_returns_when_time_is_up(api: Api) -> None:
    job = (
        await api.post("jobs", {"script": "sleepy", "kwargs": {"seconds": 30}, "run": True})
    ).json
    began = time.monotonic()
    answer = await api.get(f"jobs/{job['id']}", params={"wait": "0.5"})
    assert answer.json["status"] in ("queued", "running")
    assert 0.4 < time.monotonic() - began < 5
    await api.post(f"jobs/{job['id']}/cancel")


async def test_many_jobs_at_once_all_finish(api: Api) -> None:
    created = await asyncio.gather(
        *[
            api.post("jobs", {"script": "echo", "kwargs": {"text": str(i)}, "run": True})
            for i in range(40)
        ]
    )
    finished = await asyncio.gather(*[api.wait(c.json["id"]) for c in created])
    assert [f["result"] for f in finished] == [str(i) for i in range(40)]


async def test_post_with_wait_answers_with_the_finished_job(api: Api) -> None:
    answer = await api.post(
        "jobs", {"script": "echo", "kwargs": {"text": "quick"}, "run": True}, params={"wait": 30}
    )
    assert answer.code == 201
    assert answer.json["status"] == "succeeded"
    assert answer.json["result"] == "quick"
    bad = await api.get(f"jobs/{answer.json['id']}", params={"wait": 1, "until": "later"})
    assert bad.code == 400
    assert "until: unknown status 'later'" in bad.json["message"]


async def test_cancelling_many_jobs_in_a_row_leaves_the_workers_working(api: Api) -> None:
    for _ in range(3):
        jobs = [
            (
                await api.post("jobs", {"script": "sleepy", "kwargs": {"seconds": 60}, "run": True})
            ).json
            for _ in range(2)
        ]
        for job in jobs:
            await api.wait_until(job["id"], "running")
        for job in jobs:
            assert (await api.post(f"jobs/{job['id']}/cancel")).json["status"] == "cancelled"
    assert (await api.run("echo", kwargs={"text": "alive"}))["result"] == "alive"


async def test_null_is_refused_where_it_would_erase(api: Api) -> None:
    job = (await api.post("jobs", {"script": "echo", "kwargs": {"text": "x"}})).json
    for body in ({"public": None}, {"args": None}, {"kwargs": None}, {"tags": None}):
        answer = await api.patch(f"jobs/{job['id']}", body)
        assert answer.code == 400, body
        assert "may not be null" in answer.json["message"]
    cleared = await api.patch(f"jobs/{job['id']}", {"timeout": None, "data": None})
    assert cleared.code == 200


async def test_bulk_delete_never_deletes_more_than_was_asked(api: Api) -> None:
    kept = await api.run("echo", kwargs={"text": "keep"})
    failed = await api.run("raises")
    for params, body, words in [
        ({"stauts": "failed"}, None, "unknown query parameter 'stauts'"),
        ({"status": "bogus"}, None, "unknown status 'bogus'"),
        ({"status": "failed"}, {"filter": {}}, "not both"),
        (None, {}, "filter"),
        (None, {"filter": {"script": "raises"}, "limit": 1}, "limit"),
        (None, {"filter": {"$where": "1"}}, "$where"),
    ]:
        if body is None:
            answer = await api.delete("jobs", params=params)
        else:
            answer = await api.call("DELETE", "jobs", body, params=params)
        assert answer.code == 400, (params, body, answer)
        assert words in answer.json["message"], (params, body, answer.json)
    assert (await api.get("jobs")).json["total"] == 2  # nothing was deleted by any of them
    assert (await api.get("jobs", params={"stauts": "failed"})).code == 400
    gone = await api.call("DELETE", "jobs", {"filter": {"status": "failed"}})
    assert gone.json == {"deleted": 1}
    assert [j["id"] for j in (await api.get("jobs")).json["jobs"]] == [kept["id"]]
    assert (await api.get(f"jobs/{failed['id']}")).code == 404


async def test_bodies_no_json_reader_could_read_are_refused(api: Api) -> None:
    deep_kwargs = '{"script": "echo", "kwargs": {"text": ' + "[" * 5000 + "]" * 5000 + "}}"
    deep_filter = '{"filter": ' + '{"$and": [' * 2000 + "{}" + "]}" * 2000 + "}"
    for method, path, raw, words in [
        ("POST", "jobs", b'{"script": "add", "args": [NaN, 1], "run": true}', "NaN is not JSON"),
        ("POST", "jobs", b'{"script": "echo", "timeout": Infinity}', "Infinity is not JSON"),
        ("POST", "jobs", deep_kwargs.encode(), "nested too deeply"),
        ("POST", "jobs/query", deep_filter.encode(), "nested too deeply"),
    ]:
        answer = await api.call(method, path, raw=raw)
        assert answer.code == 400, (path, raw[:60], answer)
        assert words in answer.json["message"], answer.json
    assert (await api.get("jobs")).json["total"] == 0  # nothing half-made stays behind
    job = (await api.post("jobs", {"script": "echo", "kwargs": {"text": "x"}})).json
    nan = await api.call("PATCH", f"jobs/{job['id']}", raw=b'{"kwargs": {"text": NaN}}')
    assert nan.code == 400
    assert (await api.get(f"jobs/{job['id']}")).json["kwargs"] == {"text": "x"}


async def test_numbers_too_large_for_the_store_are_refused_or_compared(api: Api) -> None:
    done = await api.run("echo", kwargs={"text": "x"})
    for answer in [
        await api.get("jobs", params={"offset": 2**63}),
        await api.post("jobs/query", {"offset": 2**63}),
        await api.get("data", params={"offset": 2**63}),
    ]:
        assert answer.code == 400, answer
        assert "offset" in answer.json["message"]
    huge = await api.post("jobs/query", {"filter": {"time_sec": {"$lt": 1e30}}})
    assert huge.code == 200
    assert [j["id"] for j in huge.json["jobs"]] == [done["id"]]
    # an integer no store keeps, or a number no double holds, is refused as anywhere else
    for absurd in (10**30, 10**400):
        answer = await api.post("jobs/query", {"filter": {"time_sec": {"$lt": absurd}}})
        assert answer.code == 400, answer


async def test_a_job_whose_end_cannot_be_stored_fails_with_the_reason(
    api: Api, jobserver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = jobserver.jobs.store.store
    update = store.update_job
    broken = store.unavailable_errors[0]  # what this store raises when its storage fails

    attempts: list[str] = []

    def failing(job_id: str, changes: dict, **kwargs: Any) -> Any:
        # injected: the disk fails as the job ends, and for the first try after that too
        if changes.get("status") in ("succeeded", "failed"):
            attempts.append(changes["status"])
            if len(attempts) <= 2:
                raise broken("disk I/O error")
        return update(job_id, changes, **kwargs)

    monkeypatch.setattr(store, "update_job", failing)
    job = await api.run("echo", kwargs={"text": "x"})
    assert job["status"] == "failed"  # not "running" for ever
    assert job["error"]["type"] == "UnrecordedOutcome"
    assert (
        "could not be stored: Unavailable: the job store cannot be used: disk I/O error"
        in (job["error"]["message"])
    )
    assert (await api.get(f"jobs/{job['id']}")).json["status"] == "failed"
    assert attempts == ["succeeded", "failed", "failed"]  # it tried again, and got through


async def test_careless_code_is_contained(api: Api) -> None:
    huge = await api.run("misbehave", kwargs={"how": "huge_error"})
    assert huge["status"] == "failed"
    assert len(huge["error"]["message"]) < 11_000  # the record stays small
    assert huge["error"]["message"].endswith("(990,000 more characters)")
    unprintable = await api.run("misbehave", kwargs={"how": "unprintable_error"})
    assert unprintable["error"]["type"] == "Unprintable"  # its own failure, not a dead worker
    forked = await api.run("misbehave", kwargs={"how": "fork"})
    assert forked["result"] == "parent"
    for how in ("alarm", "path"):
        assert (await api.run("misbehave", kwargs={"how": how}))["status"] == "succeeded"
    later = [api.run("misbehave", kwargs={"how": "state"}) for _ in range(2)]
    for job in await asyncio.gather(*later):  # whichever worker ran them
        assert job["status"] == "succeeded", job["error"]
        assert job["result"] == {"nowhere": False, "limit": 1000}
    stormed = await api.run("misbehave", kwargs={"how": "progress_storm"})
    assert stormed["progress"] == {"fraction": 1.0, "message": "done, again"}
    assert (await api.run("echo", kwargs={"text": "fine"}))["result"] == "fine"


async def test_a_store_that_cannot_write_is_a_503_that_says_why(
    api: Api, jobserver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = jobserver.jobs.store.store
    broken = store.unavailable_errors[0]  # what this store raises when its storage fails

    def full(*args: Any, **kwargs: Any) -> Any:
        raise broken("database or disk is full")  # injected: a full disk

    monkeypatch.setattr(store, "insert_job", full)
    answer = await api.post("jobs", {"script": "echo", "kwargs": {"text": "x"}, "run": True})
    assert answer.code == 503
    assert answer.json["message"] == "the job store cannot be used: database or disk is full"
    monkeypatch.undo()
    assert (await api.get("jobs")).json["total"] == 0  # nothing half-made
    assert (await api.run("echo", kwargs={"text": "again"}))["result"] == "again"


async def test_rerun_of_a_job_with_a_default_json_cannot_write(api: Api) -> None:
    first = await api.run("inf_default")
    assert first["result"] == "inf"
    again = (await api.post(f"jobs/{first['id']}/rerun", {})).json
    assert (await api.wait(again["id"]))["result"] == "inf"


async def test_a_record_comes_back_as_it_was_whatever_its_text(api: Api) -> None:
    # text shaped like what the server splices stored results in with stays text
    text = "\x00raw0\x00"
    job = await api.run("echo", kwargs={"text": text, "times": 2})
    assert job["status"] == "succeeded"
    again = await api.get(f"jobs/{job['id']}")
    assert again.json["kwargs"] == {"text": text, "times": 2}
    assert again.json["result"] == text * 2


async def test_a_late_subscriber_hears_the_job_as_it_is_now(
    api: Api, api_fetch: Any, jobserver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a busy machine the store can lag behind the job: whoever opens the job's event
    stream in that moment is told it is running, not what the store last wrote."""
    runner = jobserver.jobs.store
    write = runner.write
    started = asyncio.Event()
    release = asyncio.Event()

    def held(method: Any, *args: Any, **kwargs: Any) -> Any:
        if len(args) > 1 and args[1].get("status") == "running":
            started.set()  # the worker has the job; its "running" is not stored yet

            async def later() -> Any:
                await release.wait()
                return await write(method, *args, **kwargs)

            return asyncio.ensure_future(later())
        return write(method, *args, **kwargs)

    monkeypatch.setattr(runner, "write", held)
    job = (await api.post("jobs", {"script": "sleepy", "kwargs": {"seconds": 60}})).json
    assert (await api.post(f"jobs/{job['id']}/run")).code == 202
    await asyncio.wait_for(started.wait(), 30)
    received = bytearray()
    first = asyncio.Event()

    def on_chunk(chunk: bytes) -> None:
        received.extend(chunk)
        if b"\n\n" in received:
            first.set()

    # the stream lasts until the job ends: its bound is for a busy machine, not a guess
    stream = asyncio.ensure_future(
        api_fetch(f"jobs/{job['id']}/events", streaming_callback=on_chunk, request_timeout=STEP)
    )
    try:
        await asyncio.wait_for(first.wait(), 30)
        kind, data = parse_sse(received.decode())[0]
        assert (kind, data["job"]["status"]) == ("status", "running")
    finally:
        release.set()
        assert (await api.post(f"jobs/{job['id']}/cancel")).code == 202
        await asyncio.wait_for(stream, STEP)
