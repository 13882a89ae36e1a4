"""The store contract, run against every store: filters mean what the documentation
says, sorting and paging are exact, documents round-trip, changes are atomic."""

from __future__ import annotations

import pathlib
import random
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import mongo
import pytest

from jupyter_jobserver.errors import InvalidRequest
from jupyter_jobserver.store import RawJSON, SQLiteStore, Store
from jupyter_jobserver.store.mongo import MongoStore
from jupyter_jobserver.store.query import parse_filter, parse_sort

STATUSES = ["created", "queued", "running", "succeeded", "failed", "cancelled"]


def make_job(i: int, rng: random.Random) -> dict[str, Any]:
    status = rng.choice(STATUSES)
    started = (
        None if status in ("created", "queued") else f"2026-11-{1 + i % 28:02d}T10:00:00.000000Z"
    )
    return {
        "id": f"job{i:04d}",
        "script": rng.choice(["summary", "slow", "fail"]),
        "process": "function",
        "status": status,
        "owner": rng.choice(["alice", "bob"]),
        "public": rng.random() < 0.3,
        "tags": rng.sample(["a", "b", "c"], rng.randint(0, 2)),
        "args": [],
        "kwargs": {"i": i},
        "created": f"2026-11-{1 + i % 28:02d}T09:{i % 60:02d}:00.000000Z",
        "started": started,
        "time_sec": None if started is None else round(rng.random() * 10, 3),
        "exit_code": rng.choice([None, 0, 1]),
        "result": {"value": i},
    }


def matches(job: dict[str, Any], spec: dict[str, Any]) -> bool:
    """The documented semantics, written independently of the SQL translation."""
    for key, cond in spec.items():
        if key == "$and":
            ok = all(matches(job, c) for c in cond)
        elif key == "$or":
            ok = any(matches(job, c) for c in cond)
        elif key == "$nor":
            ok = not any(matches(job, c) for c in cond)
        else:
            ok = field_matches(job.get(key), cond, key == "tags")
        if not ok:
            return False
    return True


def field_matches(value: Any, cond: Any, is_tags: bool) -> bool:
    if not (isinstance(cond, dict) and all(k.startswith("$") for k in cond)):
        cond = {"$eq": cond}
    values = value if is_tags else [value]
    for op, arg in cond.items():
        if op == "$eq":
            ok = (
                (not values)
                if (is_tags and arg is None)
                else (arg in values if arg is not None else value is None)
            )
        elif op == "$ne":
            ok = not field_matches(value, {"$eq": arg}, is_tags)
        elif op == "$in":
            ok = any(field_matches(value, {"$eq": a}, is_tags) for a in arg)
        elif op == "$nin":
            ok = not any(field_matches(value, {"$eq": a}, is_tags) for a in arg)
        elif op == "$all":
            ok = all(a in values for a in arg)
        elif op == "$exists":
            ok = (bool(values) if is_tags else value is not None) == arg
        elif op == "$not":
            ok = not field_matches(value, arg, is_tags)
        else:
            compare = {
                "$gt": lambda a, b: a > b,
                "$gte": lambda a, b: a >= b,
                "$lt": lambda a, b: a < b,
                "$lte": lambda a, b: a <= b,
            }[op]
            ok = value is not None and compare(value, arg)
        if not ok:
            return False
    return True


#: how to make each store the contract runs against, in a folder of its own
STORES: dict[str, Callable[[pathlib.Path], Store]] = {
    "sqlite": lambda folder: SQLiteStore(url=f"sqlite:///{folder / 'sub' / 'jobs.sqlite'}"),
    # real pymongo over the wire (see tests/mongo.py), a database per test
    "mongodb": lambda folder: MongoStore(url=mongo.uri(), database=mongo.new_database()),
}


@pytest.fixture(params=sorted(STORES))
def store(request: Any, tmp_path: pathlib.Path) -> Store:
    store = STORES[request.param](tmp_path)
    store.open()
    yield store
    store.close()
    if isinstance(store, MongoStore):
        mongo.drop(store.database)


@pytest.fixture
def jobs(store: Store) -> list[dict[str, Any]]:
    rng = random.Random(7)
    made = [make_job(i, rng) for i in range(200)]
    for job in made:
        store.insert_job(job)
    return made


FILTERS = [
    {},
    {"status": "failed"},
    {"status": {"$in": ["failed", "cancelled"]}},
    {"status": {"$nin": ["failed", "cancelled"]}, "owner": "alice"},
    {"owner": {"$ne": "alice"}},
    {"public": True},
    {"public": {"$ne": True}, "script": "slow"},
    {"tags": "a"},
    {"tags": {"$ne": "a"}},
    {"tags": {"$all": ["a", "b"]}},
    {"tags": {"$in": ["b", "c"]}},
    {"tags": {"$nin": ["b", "c"]}},
    {"tags": None},
    {"tags": {"$exists": True}},
    {"started": None},
    {"started": {"$exists": True}},
    {"started": {"$ne": None}},
    {"started": {"$gte": "2026-11-10", "$lt": "2026-11-20T00:00:00Z"}},
    {"created": {"$lte": "2026-11-05T09:30:00+00:00"}},
    {"time_sec": {"$gt": 5}},
    {"time_sec": {"$not": {"$gt": 5}}},
    {"exit_code": {"$in": [None, 1]}},
    {"exit_code": {"$nin": [None]}},
    {"exit_code": 0},
    {"$or": [{"script": "fail"}, {"tags": "c"}], "owner": "bob"},
    {"$nor": [{"status": "failed"}, {"public": True}]},
    {"$and": [{"owner": "alice"}, {"$or": [{"status": "running"}, {"time_sec": {"$lt": 1}}]}]},
    {"id": {"$gte": "job0100", "$lt": "job0110"}},
]


@pytest.mark.parametrize("spec", FILTERS, ids=[str(i) for i in range(len(FILTERS))])
def test_filters_select_what_the_documentation_says(
    store: Store, jobs: list[dict[str, Any]], spec: dict[str, Any]
) -> None:
    from jupyter_jobserver.store.query import format_time, parse_time

    def normal(s: dict) -> dict:  # time strings compare as instants, as documented
        out = {}
        for k, v in s.items():
            if k in ("created", "started") and isinstance(v, dict):
                v = {
                    op: format_time(parse_time(x)) if isinstance(x, str) else x
                    for op, x in v.items()
                }
            out[k] = v
        return out

    expected = sorted(j["id"] for j in jobs if matches(j, normal(spec)))
    where = parse_filter(spec) if spec else None
    found, total = store.find_jobs(where, [("created", 1)], 1000, 0)
    assert sorted(j["id"] for j in found) == expected
    assert total == len(expected)
    assert sorted(store.job_ids(where)) == expected


def test_job_times_are_fixed_width_utc_that_sort_as_instants() -> None:
    import datetime as dt

    from jupyter_jobserver.store.query import format_time, parse_time, utcnow

    before = dt.datetime.now(dt.timezone.utc)
    stamps = [utcnow() for _ in range(2000)]
    after = dt.datetime.now(dt.timezone.utc)
    assert stamps == sorted(stamps)
    for stamp in (stamps[0], stamps[-1]):
        assert len(stamp) == len(format_time(before)) and stamp.endswith("Z")
        assert before - dt.timedelta(milliseconds=1) <= parse_time(stamp) <= after
        assert format_time(parse_time(stamp)) == stamp


def test_sorting_and_paging(store: Store, jobs: list[dict[str, Any]]) -> None:
    order = parse_sort("-time_sec,script")
    page1, total = store.find_jobs(None, order, 50, 0)
    page2, _ = store.find_jobs(None, order, 50, 50)
    assert total == 200
    keys = [(j["time_sec"], j["script"]) for j in page1 + page2]
    with_time = [k for k in keys if k[0] is not None]
    assert with_time == sorted(with_time, key=lambda k: (-k[0], k[1]))
    assert not {j["id"] for j in page1} & {j["id"] for j in page2}
    assert all("result" not in j for j in page1)
    assert parse_sort({"created": -1}) == [("created", -1)]
    with pytest.raises(InvalidRequest, match="cannot sort by 'kwargs'"):
        parse_sort("kwargs")
    with pytest.raises(InvalidRequest, match="must be 1 or -1"):
        parse_sort({"created": 0})


def test_documents_come_back_as_they_went_in(store: Store) -> None:
    job = make_job(1, random.Random(1))
    job.update(error={"type": "X", "message": "m", "detail": None}, provenance={"p": [1]})
    # the service always sets every field
    job.update(edited=None, queued=None, finished=None, sweep=None, sweep_index=None)
    store.insert_job(job)
    assert store.get_job(job["id"]) == job
    light = store.get_job(job["id"], result=False)
    assert "result" not in light
    assert store.get_job("nope") is None


def test_updates_are_conditional_on_status(store: Store) -> None:
    job = make_job(1, random.Random(1)) | {"status": "queued", "tags": ["x"]}
    store.insert_job(job)
    assert not store.update_job(job["id"], {"status": "running"}, status_in={"created"})
    assert store.update_job(
        job["id"], {"status": "running", "progress": {"fraction": 0.5}}, status_in={"queued"}
    )
    assert store.update_job(job["id"], {"result": RawJSON('{"big":[1,2]}'), "tags": ["y", "z"]})
    got = store.get_job(job["id"])
    assert got["status"] == "running"
    assert got["progress"] == {"fraction": 0.5}
    assert got["result"] == {"big": [1, 2]}
    assert got["tags"] == ["y", "z"]
    assert store.job_ids(parse_filter({"tags": "x"})) == []
    assert not store.update_job("missing", {"status": "failed"})


def test_only_one_of_many_racing_transitions_wins(store: Store) -> None:
    job = make_job(1, random.Random(1)) | {"status": "running"}
    store.insert_job(job)
    outcomes: list[bool] = []
    barrier = threading.Barrier(8)

    def finish(status: str) -> None:
        barrier.wait()
        outcomes.append(store.update_job(job["id"], {"status": status}, status_in={"running"}))

    threads = [threading.Thread(target=finish, args=(s,)) for s in ["succeeded", "cancelled"] * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == [False] * 7 + [True]


def test_delete_removes_jobs_and_their_tags(store: Store, jobs: list[dict[str, Any]]) -> None:
    ids = [j["id"] for j in jobs[:120]]
    assert store.delete_jobs([*ids, "not-there"]) == 120
    assert store.find_jobs(None, [("created", 1)], 1, 0)[1] == 80
    assert store.job_ids(parse_filter({"id": {"$in": ids}})) == []
    if not isinstance(store, SQLiteStore):
        return
    raw = sqlite3.connect(store.path)
    assert (
        raw.execute(
            "SELECT COUNT(*) FROM job_tags WHERE job_id IN ('job0001', 'job0002')"
        ).fetchone()[0]
        == 0
    )


def make_document(i: int) -> dict[str, Any]:
    return {
        "id": f"doc{i:03d}",
        "name": f"series {i % 5}",
        "datatype": ["json", "dataframe"][i % 2],
        "description": None if i % 3 else f"number {i}",
        "owner": ["alice", "bob"][i % 2],
        "public": i % 4 == 0,
        "created": f"2026-11-{1 + i % 28:02d}T08:00:00.000000Z",
        "edited": None,
        "revision": 1,
        "size": 10 * i,
        "sha256": f"{i:064x}",
        "data": {"values": [i, i + 1], "$odd key": {"a.b": 2**70}},
    }


def test_data_documents_round_trip_filter_sort_and_page(store: Store) -> None:
    from jupyter_jobserver.store.query import DATA_FIELDS, DATA_SORT_FIELDS

    made = [make_document(i) for i in range(30)]
    for document in made:
        store.insert_data(document)
    assert store.get_data("doc007") == made[7]  # any JSON, exactly: odd keys, big integers
    assert "data" not in store.get_data("doc007", payload=False)
    assert isinstance(store.get_data("doc007", raw=True)["data"], RawJSON)
    assert store.get_data("nope") is None
    where = parse_filter({"owner": "bob", "size": {"$gte": 100}}, DATA_FIELDS)
    page, total = store.find_data(where, parse_sort("-size", DATA_SORT_FIELDS), 5, 1)
    expected = sorted(
        (d for d in made if d["owner"] == "bob" and d["size"] >= 100), key=lambda d: -d["size"]
    )
    assert total == len(expected)
    assert [d["id"] for d in page] == [d["id"] for d in expected[1:6]]
    assert all("data" not in d for d in page)
    assert store.delete_data(["doc001", "doc002", "gone"]) == 2
    assert store.find_data(None, [("created", 1)], 100, 0)[1] == 28


def test_a_data_document_changes_only_at_the_revision_its_editor_read(store: Store) -> None:
    store.insert_data(make_document(1))
    assert store.update_data("doc001", {"data": [1], "revision": 2}, revision=1)
    assert not store.update_data("doc001", {"data": [2], "revision": 2}, revision=1)  # stale
    assert store.get_data("doc001")["data"] == [1]
    assert store.update_data("doc001", {"public": True})  # no revision given: any
    assert store.get_data("doc001", payload=False)["public"] is True
    assert not store.update_data("missing", {"name": "x"})
    with pytest.raises(ValueError, match="not a data document field"):
        store.update_data("doc001", {"payload": 1})


def test_only_one_of_many_racing_editors_wins(store: Store) -> None:
    store.insert_data(make_document(1))
    outcomes: list[bool] = []
    barrier = threading.Barrier(6)

    def edit(n: int) -> None:
        barrier.wait()
        outcomes.append(store.update_data("doc001", {"data": n, "revision": 2}, revision=1))

    threads = [threading.Thread(target=edit, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == [False] * 5 + [True]


def sweep_jobs(sweep_id: str, count: int) -> list[dict[str, Any]]:
    rng = random.Random(3)
    made = []
    for i in range(count):
        job = make_job(1000 + i, rng) | {"id": f"{sweep_id}-{i:03d}", "owner": "alice"}
        job.update(sweep=sweep_id, sweep_index=i, result={"value": i} if i % 2 else None)
        made.append(job)
    return made


def test_a_sweeps_jobs_go_in_at_once_and_add_up(store: Store) -> None:
    made = sweep_jobs("s1", 30)
    store.insert_jobs(made)
    store.insert_jobs(sweep_jobs("s2", 5))
    mine = parse_filter({"sweep": "s1"})
    assert sorted(store.job_ids(mine)) == sorted(j["id"] for j in made)
    assert store.get_job("s1-004", result=False)["tags"] == made[4]["tags"]
    summary = store.job_summary(mine)
    expected: dict[str, int] = {}
    for job in made:
        expected[job["status"]] = expected.get(job["status"], 0) + 1
    assert summary["counts"] == expected
    starts = [j["started"] for j in made if j["started"]]
    assert summary["started"] == min(starts)
    assert summary["finished"] is None  # no job of these has finished
    assert store.job_summary(parse_filter({"sweep": "none"})) == {
        "counts": {},
        "started": None,
        "finished": None,
    }
    results = store.job_results(["s1-001", "s1-002", "s1-003", "missing"])
    assert results == {"s1-001": '{"value":1}', "s1-003": '{"value":3}'}
    assert isinstance(results["s1-001"], RawJSON)


def test_a_sweep_insert_with_a_bad_job_writes_none_of_them(store: Store) -> None:
    made = sweep_jobs("s1", 10)
    store.insert_job(made[7])  # its id is taken: the second insert must fail whole
    with pytest.raises(Exception):  # noqa: B017, PT011  # each store raises its own error
        store.insert_jobs(made)
    assert store.job_ids(parse_filter({"sweep": "s1"})) == [made[7]["id"]]


def test_sweep_documents_round_trip_change_and_go(store: Store) -> None:
    sweep = {
        "id": "s1",
        "script": "power",
        "owner": "alice",
        "public": False,
        "size": 6,
        "created": "2026-11-01T09:00:00.000000Z",
        "cancelled": None,
        "tags": ["t"],
        "kwargs": {"n": 2},
        "grid": {"x": [1, 2, 3]},
        "sets": [{"y": 1}, {"y": 2}],
        "datafiles": None,
        "data": None,
        "timeout": None,
    }
    store.insert_sweep(sweep)
    store.insert_sweep(sweep | {"id": "s2", "owner": "bob", "created": "2026-11-02T00:00:00Z"})
    assert store.get_sweep("s1") == sweep
    assert store.get_sweep("nope") is None
    assert store.update_sweep("s1", {"cancelled": "2026-11-01T10:00:00.000000Z", "tags": []})
    assert store.get_sweep("s1") | {"cancelled": None, "tags": ["t"]} == sweep
    assert not store.update_sweep("nope", {"cancelled": None})
    found, total = store.find_sweeps(parse_filter({"owner": "alice"}), [("created", -1)], 10, 0)
    assert total == 1 and [s["id"] for s in found] == ["s1"]
    found, total = store.find_sweeps(None, [("created", -1)], 1, 0)
    assert total == 2 and [s["id"] for s in found] == ["s2"]
    assert store.delete_sweeps(["s1", "nope"]) == 1
    assert store.get_sweep("s1") is None


def test_an_idempotency_key_is_claimed_once_per_owner(store: Store) -> None:
    now = "2026-11-01T09:00:00.000000Z"
    assert store.claim_key("alice", "k1", "job-a", "f1", now) is None
    first = store.claim_key("alice", "k1", "job-b", "f2", now)
    assert first == {"target": "job-a", "fingerprint": "f1", "created": now}
    assert store.claim_key("bob", "k1", "job-c", "f1", now) is None  # keys are per owner
    store.release_key("alice", "k1", "job-other")  # not its target: kept
    assert store.claim_key("alice", "k1", "job-d", "f1", now)["target"] == "job-a"
    store.release_key("alice", "k1", "job-a")
    assert store.claim_key("alice", "k1", "job-d", "f1", now) is None


def test_an_older_file_gains_the_sweep_columns(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, script TEXT, process TEXT NOT NULL, "
        "status TEXT NOT NULL, owner TEXT NOT NULL, public INTEGER NOT NULL DEFAULT 0, "
        "created TEXT NOT NULL, edited TEXT, queued TEXT, started TEXT, finished TEXT, "
        "time_sec REAL, exit_code INTEGER, body TEXT NOT NULL, result TEXT);"
        "INSERT INTO jobs (id, process, status, owner, created, body) VALUES "
        "('old', 'function', 'succeeded', 'alice', '2026-01-01T00:00:00.000000Z', '{}');"
        "PRAGMA user_version = 2;"
    )
    old.close()
    store = SQLiteStore(url=str(path))
    store.open()
    try:
        assert store.get_job("old")["sweep"] is None
        store.insert_jobs(sweep_jobs("s1", 2))
        assert len(store.job_ids(parse_filter({"sweep": "s1"}))) == 2
    finally:
        store.close()
