"""Sweeps through the REST API of a real Jupyter server: many jobs of one script, made,
followed, cancelled, rerun and collected as one table."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import pathlib
from typing import Any

import pytest
from helpers import Api, UsersByToken, parse_sse
from test_multiuser import USERS

#: every test runs on the SQLite store and on the MongoDB store (see conftest.py)
EVERY_STORE = True


async def sweep_events(api: Api, sweep_id: str) -> list[tuple[str, Any]]:
    """The sweep's whole event stream (it ends once every job of the sweep has)."""
    answer = await api.get(f"sweeps/{sweep_id}/events")
    assert answer.code == 200, answer
    return parse_sse(answer.text)


async def finished(api: Api, sweep_id: str) -> dict[str, Any]:
    events = await sweep_events(api, sweep_id)
    kind, data = events[-1]
    assert kind == "end"
    return data["sweep"]


async def test_a_grid_sweep_runs_every_combination_and_reads_as_a_table(api: Api) -> None:
    created = await api.post(
        "sweeps", {"script": "power", "grid": {"x": [1, 2, 3], "n": [1, 2]}, "run": True}
    )
    assert created.code == 201, created
    sweep = created.json
    assert created.headers["Location"].endswith(f"/jobserver/api/sweeps/{sweep['id']}")
    assert sweep["size"] == 6
    assert sum(sweep["counts"].values()) == 6

    events = await sweep_events(api, sweep["id"])
    assert events[0][0] == "progress"
    assert events[-1][0] == "end"
    done = [data["sweep"]["progress"]["done"] for _, data in events]
    assert done == sorted(done) and done[-1] == 6  # progress only goes forward

    read = (await api.get(f"sweeps/{sweep['id']}")).json
    assert read["status"] == "succeeded"
    assert read["counts"]["succeeded"] == 6
    assert read["progress"] == {"done": 6, "total": 6, "fraction": 1.0}
    assert read["created"] <= read["started"] <= read["finished"]

    jobs = (await api.get(f"sweeps/{sweep['id']}/jobs")).json
    assert jobs["total"] == 6
    for job in jobs["jobs"]:  # ordinary job records that name their sweep
        assert job["sweep"] == sweep["id"]
        assert job["provenance"]["parameters"] == job["kwargs"]
    one = (await api.get(f"jobs/{jobs['jobs'][0]['id']}")).json
    assert one["result"] == one["kwargs"]["x"] ** one["kwargs"]["n"]

    table = (await api.get(f"sweeps/{sweep['id']}/results")).json
    columns = table["columns"]
    assert columns[:4] == ["index", "job", "x", "n"]
    rows = [dict(zip(columns, row, strict=True)) for row in table["rows"]]
    # the grid's last parameter changes fastest
    assert [(r["x"], r["n"]) for r in rows] == [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2)]
    assert [r["result"] for r in rows] == [1, 1, 2, 4, 3, 9]
    assert all(r["status"] == "succeeded" and r["time_sec"] >= 0 for r in rows)

    listed = (await api.get("sweeps")).json
    assert [s["id"] for s in listed["sweeps"]] == [sweep["id"]]


async def test_a_list_of_sets_with_a_failure_and_its_rerun(api: Api) -> None:
    body = {"script": "power", "sets": [{"x": 1}, {"x": -1}, {"x": 2}], "kwargs": {"n": 3}}
    sweep = (await api.post("sweeps", {**body, "run": True})).json
    ended = await finished(api, sweep["id"])
    assert ended["status"] == "failed"
    assert ended["counts"]["succeeded"] == 2 and ended["counts"]["failed"] == 1

    table = (await api.get(f"sweeps/{sweep['id']}/results")).json
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["rows"]]
    assert [r["result"] for r in rows] == [1, None, 8]
    assert rows[1]["status"] == "failed"
    assert rows[1]["error"].startswith("ValueError: x must not be negative")
    assert rows[0]["error"] is None

    text = await api.get(f"sweeps/{sweep['id']}/results", params={"format": "csv"})
    assert text.headers["Content-Type"].startswith("text/csv")
    parsed = list(csv.DictReader(io.StringIO(text.text)))
    assert [r["x"] for r in parsed] == ["1", "-1", "2"]
    assert [r["result"] for r in parsed] == ["1", "", "8"]
    assert parsed[1]["status"] == "failed" and "negative" in parsed[1]["error"]

    rerun = await api.post(f"sweeps/{sweep['id']}/rerun")
    assert rerun.code == 202, rerun
    again = await finished(api, sweep["id"])
    assert again["counts"]["failed"] == 1  # the same parameters fail the same way
    assert sum(again["counts"].values()) == 3  # counted once per place
    table = (await api.get(f"sweeps/{sweep['id']}/results")).json
    assert len(table["rows"]) == 3
    failed_job = table["rows"][1][1]
    assert failed_job != rows[1]["job"]
    attempt = (await api.get(f"jobs/{failed_job}")).json
    assert attempt["rerun_of"] == rows[1]["job"]
    assert attempt["kwargs"] == {"n": 3, "x": -1}
    every = (await api.get(f"sweeps/{sweep['id']}/jobs")).json
    assert every["total"] == 4  # both attempts stay on record
    failed = (await api.get(f"sweeps/{sweep['id']}/jobs", params={"status": "failed"})).json
    assert failed["total"] == 2


async def test_a_datafile_sweep_runs_the_script_on_each_file(api: Api) -> None:
    for name, text in (("a.csv", "v\n1\n"), ("b.csv", "v\n1\n2\n")):
        assert (await api.put(f"datafiles/{name}", raw=text.encode())).code == 201
    created = await api.post(
        "sweeps", {"script": "file_info", "datafiles": ["a.csv", "b.csv"], "run": True}
    )
    assert created.code == 201, created
    await finished(api, created.json["id"])
    table = (await api.get(f"sweeps/{created.json['id']}/results")).json
    rows = [dict(zip(table["columns"], row, strict=True)) for row in table["rows"]]
    assert [r["datafile"] for r in rows] == ["a.csv", "b.csv"]
    assert [r["result.name"] for r in rows] == ["a.csv", "b.csv"]  # a flat dict: columns
    assert rows[1]["result.size"] > rows[0]["result.size"]

    moments = await api.post(
        "sweeps", {"script": "moments", "grid": {"x": [1.5]}, "kwargs": {"scale": 2.0}, "run": 1}
    )
    assert moments.code == 400  # strict: run is a boolean
    moments = await api.post("sweeps", {"script": "moments", "grid": {"x": [1.5]}, "run": True})
    await finished(api, moments.json["id"])
    table = (await api.get(f"sweeps/{moments.json['id']}/results")).json
    row = dict(zip(table["columns"], table["rows"][0], strict=True))
    assert (row["result.double"], row["result.square"]) == (3.0, 2.25)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            {"script": "power", "sets": [{"x": 1, "n": 2}, {"x": 2, "n": 9}]},
            ["parameter set 1", "x=2", "n"],
        ),
        ({"script": "power", "grid": {"x": [1, "two"]}}, ["grid point", 'x="two"', "x"]),
        ({"script": "power", "grid": {"x": []}}, ["'x' has no values"]),
        ({"script": "power", "grid": {"x": [1]}, "kwargs": {"x": 2}}, ["kwargs and grid"]),
        ({"script": "power", "grid": {"x": [1]}, "sets": [{"x": 2}]}, ["also given in grid"]),
        ({"script": "file_info", "datafiles": ["missing.csv"]}, ["missing.csv"]),
        ({"script": "power", "grid": {"x": [1]}, "surprise": 1}, ["unknown field 'surprise'"]),
    ],
)
async def test_a_bad_request_is_refused_whole_before_anything_is_made(
    api: Api, body: dict[str, Any], words: list[str]
) -> None:
    answer = await api.post("sweeps", {**body, "run": True})
    assert answer.code in (400, 404), answer
    assert answer.json["error"] in ("invalid_request", "not_found")
    for word in words:
        assert word in answer.json["message"]
    assert (await api.get("sweeps")).json["total"] == 0
    assert (await api.get("jobs")).json["total"] == 0


@pytest.mark.parametrize(
    "jp_server_config",
    [{"SweepService": {"max_sweep_size": 10}, "JobPolicy": {"max_active_jobs_per_user": 4}}],
    indirect=True,
)
async def test_limits_say_which_one_was_reached(api: Api) -> None:
    big = await api.post("sweeps", {"script": "power", "grid": {"x": list(range(11))}})
    assert big.code == 413
    assert "at most 10 per sweep" in big.json["message"]
    assert "max_sweep_size" in big.json["message"]
    many = await api.post(
        "sweeps", {"script": "power", "grid": {"x": [1, 2, 3, 4, 5]}, "run": True}
    )
    assert many.code == 429
    assert "4 are allowed at once (JobPolicy.max_active_jobs_per_user)" in many.json["message"]
    # made without run, it is within the limits; run, it is not
    made = await api.post("sweeps", {"script": "power", "grid": {"x": [1, 2, 3, 4, 5]}})
    assert made.code == 201
    assert made.json["status"] == "created" and made.json["counts"]["created"] == 5
    assert (await api.get("jobs")).json["total"] == 5
    run = await api.post(f"sweeps/{made.json['id']}/run")
    assert run.code == 429
    assert "4 are allowed at once" in run.json["message"]
    assert (await api.get(f"sweeps/{made.json['id']}")).json["counts"]["created"] == 5


@pytest.mark.parametrize(
    "jp_server_config", [{"JobPolicy": {"max_jobs_per_user": 6}}], indirect=True
)
async def test_a_sweep_counts_against_the_jobs_a_user_may_keep(api: Api) -> None:
    kept = await api.post("sweeps", {"script": "power", "grid": {"x": [1, 2, 3, 4]}})
    assert kept.code == 201, kept
    over = await api.post("sweeps", {"script": "power", "grid": {"x": [1, 2, 3]}})
    assert over.code == 429
    assert "3 more job(s) would give" in over.json["message"]
    assert "JobPolicy.max_jobs_per_user" in over.json["message"]
    assert (await api.get("jobs")).json["total"] == 4  # nothing of the refused one was made
    fits = await api.post("sweeps", {"script": "power", "grid": {"x": [1, 2]}})
    assert fits.code == 201, fits
    assert (await api.post("jobs", {"script": "power", "kwargs": {"x": 1}})).code == 429


async def test_a_sweep_made_without_run_runs_later(api: Api) -> None:
    made = (await api.post("sweeps", {"script": "power", "grid": {"x": [2, 3]}})).json
    assert made["status"] == "created"
    ran = await api.post(f"sweeps/{made['id']}/run")
    assert ran.code == 202
    ended = await finished(api, made["id"])
    assert ended["counts"]["succeeded"] == 2
    again = await api.post(f"sweeps/{made['id']}/run")
    assert again.code == 409
    assert (await api.post(f"sweeps/{made['id']}/fly")).code == 404


async def test_the_same_idempotency_key_makes_one_job_or_sweep(api: Api) -> None:
    body = {"script": "echo", "kwargs": {"text": "once"}, "run": True}
    first = await api.post("jobs", body, headers={"Idempotency-Key": "job-1"})
    assert first.code == 201
    assert first.headers["Idempotent-Replayed"] == "false"
    again = await api.post("jobs", body, headers={"Idempotency-Key": "job-1"})
    assert again.code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json["id"] == first.json["id"]
    other = await api.post(
        "jobs", {**body, "kwargs": {"text": "twice"}}, headers={"Idempotency-Key": "job-1"}
    )
    assert other.code == 409
    assert "another request" in other.json["message"]
    assert (await api.get("jobs")).json["total"] == 1

    sweep = {"script": "power", "grid": {"x": [1, 2, 3]}}
    made = await api.post("sweeps", sweep, headers={"Idempotency-Key": "sweep-1"})
    assert made.code == 201
    remade = await api.post("sweeps", sweep, headers={"Idempotency-Key": "sweep-1"})
    assert remade.code == 200 and remade.json["id"] == made.json["id"]
    assert (await api.get("sweeps")).json["total"] == 1
    assert (await api.get("jobs")).json["total"] == 4

    bad = await api.post("sweeps", sweep, headers={"Idempotency-Key": "has space"})
    assert bad.code == 400
    # a request refused is not remembered: the key stays free for a good one
    refused = await api.post("sweeps", {"script": "nope"}, headers={"Idempotency-Key": "k2"})
    assert refused.code == 404
    ok = await api.post("sweeps", sweep, headers={"Idempotency-Key": "k2"})
    assert ok.code == 201


@pytest.fixture
def gate(tmp_path: pathlib.Path) -> pathlib.Path:
    """A FIFO the ``gated`` jobs wait at until the test writes a line to it."""
    path = tmp_path / "gate"
    os.mkfifo(path)
    return path


async def open_gate(path: pathlib.Path) -> None:
    """Let the jobs waiting at the gate through (each reader gets the line or its end)."""

    def release() -> None:
        with path.open("w") as f:
            f.write("go\n")

    await asyncio.to_thread(release)


@pytest.fixture
def users(api_fetch: Any) -> dict[str, Api]:
    return {
        name: Api(api_fetch, {"Authorization": f"token {token}"}) for token, name in USERS.items()
    }


@pytest.mark.parametrize(
    "jp_server_config", [{"ServerApp": {"identity_provider_class": UsersByToken}}], indirect=True
)
async def test_another_users_job_starts_while_a_sweep_is_still_queued(
    users: dict[str, Api], gate: pathlib.Path
) -> None:
    alice, bob = users["alice"], users["bob"]
    sweep = (
        await alice.post(
            "sweeps",
            {
                "script": "gated",
                "kwargs": {"gate": str(gate)},
                "grid": {"fraction": [0.1] * 8},
                "run": True,
            },
        )
    ).json
    assert sweep["size"] == 8
    jobs = (await alice.get(f"sweeps/{sweep['id']}/jobs")).json["jobs"]
    jobs.sort(key=lambda j: j["sweep_index"])
    for first in jobs[:2]:  # a user's jobs start in the order of the sweep
        await alice.wait_until(first["id"], "running")
    busy = (await alice.get(f"sweeps/{sweep['id']}")).json
    assert busy["counts"]["running"] == 2  # both workers are busy with the sweep
    assert busy["counts"]["queued"] == 6
    assert busy["progress"]["done"] == 0
    assert busy["status"] == "running"

    job = (await bob.post("jobs", {"script": "echo", "kwargs": {"text": "me"}, "run": True})).json
    # the jobs at the gate end (one, or both if both opened it already): bob's job takes
    # the first free worker, though six of alice's were queued before it
    await open_gate(gate)
    done = await bob.wait(job["id"])
    assert done["status"] == "succeeded"
    now = (await alice.get(f"sweeps/{sweep['id']}")).json
    assert now["counts"]["succeeded"] in (1, 2)
    # at most two more of hers started: beside bob's job, and in its place once it ended
    assert now["counts"]["queued"] >= 4

    # bob cannot see or cancel alice's sweep
    assert (await bob.get(f"sweeps/{sweep['id']}")).code == 404
    assert (await bob.post(f"sweeps/{sweep['id']}/cancel")).code == 404

    cancelled = await alice.post(f"sweeps/{sweep['id']}/cancel")
    assert cancelled.code == 202
    ended = await finished(alice, sweep["id"])
    assert ended["counts"]["succeeded"] + ended["counts"]["cancelled"] == 8
    assert ended["status"] == "cancelled"
    jobs = (await alice.get(f"sweeps/{sweep['id']}/jobs")).json["jobs"]
    never = [j for j in jobs if j["status"] == "cancelled" and j["started"] is None]
    # withheld: those still queued never started, not even to be killed
    assert len(never) >= 4 and len(never) == ended["counts"]["cancelled"] - 2
    assert all(j["error"]["type"] == "Cancelled" for j in jobs if j["status"] == "cancelled")

    assert (await alice.delete(f"sweeps/{sweep['id']}")).code == 204
    assert (await alice.get(f"sweeps/{sweep['id']}")).code == 404
    assert (await alice.get("jobs")).json["total"] == 0
