"""The SQLite store against the MongoDB store, in one run.

Run: ``.venv/bin/python benchmarks/bench_store.py`` (needs ``.venv-mongo``: ``make
mongo-server``; ``JUPYTER_JOBSERVER_TEST_MONGODB_URI`` names a real MongoDB instead)

1. No-op jobs through the REST API (``POST jobs?wait=30`` of the registered ``noop``),
   one at a time (median, p99) and many at once (jobs/s), on a job server with the
   SQLite store and on one with the MongoDB store over the wire, interleaved so that
   drift in machine load hits both alike.
2. One filtered, sorted page of a store that holds 100,000 jobs (``status`` and
   ``owner`` filter, newest first, 50 jobs, with the total count), called on each store
   directly. Goal: median under 20 ms on both.

SQLite is the baseline: the ratios are MongoDB's figure over SQLite's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import random
import sys
import tempfile
import time
from typing import Any

from _harness import ROOT, Connection, concurrent, job_server, save, sequential, summary

sys.path.insert(0, str(ROOT / "tests"))

import mongo  # the tests' wire server

from jupyter_jobserver.store import SQLiteStore, Store
from jupyter_jobserver.store.mongo import MongoStore, _to_mongo
from jupyter_jobserver.store.query import parse_filter, parse_sort

PAGE_GOAL_MS = 20.0


def fake_job(i: int, rng: random.Random) -> dict[str, Any]:
    status = rng.choice(["succeeded"] * 6 + ["failed", "cancelled", "created", "queued"])
    day, second = 1 + i % 28, i % 86400
    stamp = f"2026-11-{day:02d}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
    return {
        "id": f"{i:032x}",
        "script": rng.choice(["summary", "slow", "fit", "plot"]),
        "process": "function",
        "status": status,
        "owner": rng.choice(["alice", "bob", "carol", "dave"]),
        "public": rng.random() < 0.2,
        "tags": rng.sample(["nightly", "test", "paper"], rng.randint(0, 2)),
        "args": [],
        "kwargs": {"i": i},
        "created": f"{stamp}.{i % 1_000_000:06d}Z",
        "started": None,
        "finished": None,
        "time_sec": round(rng.random(), 4),
        "exit_code": None,
        "error": None,
        "progress": None,
        "provenance": {"python": "3.11"},
        "result": {"value": i},
    }


def fill(store: Store, count: int) -> float:
    """Put ``count`` jobs into ``store``; seconds taken."""
    rng = random.Random(1)
    began = time.perf_counter()
    for start in range(0, count, 1000):
        batch = [fake_job(i, rng) for i in range(start, min(count, start + 1000))]
        if isinstance(store, MongoStore):  # in bulk: one job at a time would take minutes
            store.collection("jobs").insert_many([_to_mongo(j, _jobs_native()) for j in batch])
        else:
            with store.batch():
                for job in batch:
                    store.insert_job(job)
    return time.perf_counter() - began


def _jobs_native() -> frozenset[str]:
    from jupyter_jobserver.store.mongo import JOB_NATIVE

    return JOB_NATIVE


def page_times(store: Store, repeats: int) -> tuple[list[float], int]:
    where = parse_filter({"status": {"$in": ["failed", "cancelled"]}, "owner": "alice"})
    order = parse_sort("-created")
    times, total = [], 0
    for _ in range(repeats + 3):
        began = time.perf_counter()
        page, total = store.find_jobs(where, order, 50, 0)
        times.append(time.perf_counter() - began)
        assert len(page) == 50
    return times[3:], total


async def rest(args: argparse.Namespace, home: pathlib.Path, uri: str) -> dict[str, Any]:
    servers = {
        "sqlite": job_server(home / "sqlite", workers=2).start(),
        "mongodb": job_server(home / "mongodb", workers=2, db_url=with_database(uri)).start(),
    }
    try:
        token = servers["sqlite"].token
        headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
        body = json.dumps({"script": "noop", "run": True}).encode()

        async def job(conn: Connection) -> None:
            status, raw = await conn.request("POST", "/jobserver/api/jobs?wait=30", body, headers)
            if status != 201 or json.loads(raw)["status"] != "succeeded":
                raise RuntimeError(f"job did not succeed: {status} {raw[:200]!r}")

        seq: dict[str, list[float]] = {name: [] for name in servers}
        tput: dict[str, list[float]] = {name: [] for name in servers}
        for _ in range(args.rounds):
            for name, server in servers.items():
                seq[name] += await sequential(server.base, job, args.sequential // args.rounds)
        for _ in range(args.rounds):
            for name, server in servers.items():
                tput[name].append(await concurrent(server.base, job, args.jobs, 16))
        return {
            "latency": {name: summary(times) for name, times in seq.items()},
            "throughput": {name: max(rates) for name, rates in tput.items()},
        }
    finally:
        for server in servers.values():
            server.stop()


def with_database(uri: str) -> str:
    """``uri`` naming a database of the benchmark's own."""
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(uri)._replace(path="/" + mongo.new_database()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sequential", type=int, default=200, help="jobs one at a time")
    parser.add_argument("--jobs", type=int, default=300, help="jobs at once, per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--stored", type=int, default=100_000, help="jobs in the big store")
    parser.add_argument("--repeats", type=int, default=30, help="page reads per store")
    args = parser.parse_args()
    home = pathlib.Path(tempfile.mkdtemp(prefix="jobserver-bench-store-"))
    wire = None
    uri = os.environ.get(mongo.ENV_URI, "")
    if not uri:
        if not mongo.PYTHON.exists():
            sys.exit(f"bench_store: {mongo.PYTHON} is missing; run make mongo-server")
        (home / "wire").mkdir()
        wire = mongo.WireServer(home / "wire").start()
        uri = wire.uri
    try:
        results: dict[str, Any] = asyncio.run(rest(args, home, uri))
        print(json.dumps(results), flush=True)  # each part as soon as it is measured
        stores: dict[str, Store] = {
            "sqlite": SQLiteStore(url=str(home / "big.sqlite")),
            "mongodb": MongoStore(url=uri, database=mongo.new_database()),
        }
        results["page"] = {"stored": args.stored}
        for name, store in stores.items():
            store.open()
            took = fill(store, args.stored)
            times, total = page_times(store, args.repeats)
            results["page"][name] = {"fill_s": took, "total": total, **summary(times)}
            print(name, json.dumps(results["page"][name]), flush=True)
            if isinstance(store, MongoStore):
                mongo.drop(store.database)
            store.close()
    finally:
        if wire is not None:
            wire.stop()
    report(results)
    print(f"saved {save('store', results)}")


def report(results: dict[str, Any]) -> None:
    lat, tput, page = results["latency"], results["throughput"], results["page"]
    print("no-op job, one at a time (POST jobs?wait):")
    for name in ("sqlite", "mongodb"):
        print(
            f"  {name:8} median {lat[name]['median_ms']:7.2f} ms"
            f"   p99 {lat[name]['p99_ms']:7.2f} ms"
        )
    print(
        "  mongodb / sqlite median: "
        f"{lat['mongodb']['median_ms'] / lat['sqlite']['median_ms']:.2f}x"
    )
    print("no-op jobs at once:")
    for name in ("sqlite", "mongodb"):
        print(f"  {name:8} {tput[name]:7.1f} jobs/s")
    print(f"  mongodb / sqlite: {tput['mongodb'] / tput['sqlite']:.2f}x")
    print(f"filtered, sorted page of {page['stored']:,} jobs (goal: median < {PAGE_GOAL_MS:g} ms):")
    for name in ("sqlite", "mongodb"):
        each = page[name]
        met = "met" if each["median_ms"] < PAGE_GOAL_MS else "NOT met"
        print(
            f"  {name:8} median {each['median_ms']:7.2f} ms   p99 {each['p99_ms']:7.2f} ms   "
            f"({each['total']:,} match; filled in {each['fill_s']:.0f} s)  goal {met}"
        )
    print(
        "  mongodb / sqlite median: "
        f"{page['mongodb']['median_ms'] / page['sqlite']['median_ms']:.2f}x"
    )


if __name__ == "__main__":
    main()
