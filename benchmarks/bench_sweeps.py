"""A 10,000-job sweep of the no-op script, end to end, against a bare process pool and Dask.

Run: ``.venv/bin/python benchmarks/bench_sweeps.py`` (``--jobs N`` for another size;
``--against REV`` also measures the job server as it was at git revision ``REV``, in the
same rounds, so a change is judged against its own before)

The job server: one ``POST sweeps`` with ``{"script": "noop", "sets": [{}] * N, "run":
true}``, timed until the sweep's event stream says every job has ended; then the sweep
is read to check that every job is ``succeeded`` and recorded. The server's memory
growth is its resident size after the sweep less its resident size before.

Baselines, measured in the same run with the same number of worker processes: the same
``N`` calls of a no-op function through a warm ``concurrent.futures.ProcessPoolExecutor``
(the floor: no records, no HTTP), and through ``distributed.Client.map`` on a 2-worker
``LocalCluster`` (skipped, saying so, when ``distributed`` is not installed).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import pathlib
import statistics
import tempfile
import time
from typing import Any

from _harness import Connection, job_server, save
from bench_jobs import checkout


def noop(_: int) -> None:
    return None


def bare_pool(jobs: int, workers: int) -> float:
    """Calls per second through a warm process pool, one call per task."""
    with concurrent.futures.ProcessPoolExecutor(workers) as pool:
        list(pool.map(noop, range(workers * 4)))  # warm: every worker has started
        began = time.perf_counter()
        list(pool.map(noop, range(jobs)))
        return jobs / (time.perf_counter() - began)


def dask_map(jobs: int, workers: int) -> float | None:
    """Calls per second through ``Client.map`` on a local cluster; ``None`` without Dask."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        return None
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        client.gather(client.map(noop, range(workers * 4), pure=False))
        began = time.perf_counter()
        client.gather(client.map(noop, range(jobs), pure=False))
        return jobs / (time.perf_counter() - began)


def rss_mib(pid: int) -> float:
    """Resident memory of a process, in MiB (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def sweep_once(base: str, token: str, jobs: int) -> dict[str, Any]:
    """One sweep of ``jobs`` no-op jobs: seconds from the request to the last job's end."""
    headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
    body = json.dumps({"script": "noop", "sets": [{}] * jobs, "run": True}).encode()
    conn = await Connection.open(base)
    try:
        began = time.perf_counter()
        status, raw = await conn.request("POST", "/jobserver/api/sweeps", body, headers)
        if status != 201:
            raise RuntimeError(f"the sweep was refused: {status} {raw[:300]!r}")
        sweep_id = json.loads(raw)["id"]
        created = time.perf_counter() - began
        status, _ = await conn.request(
            "GET", f"/jobserver/api/sweeps/{sweep_id}/events", headers=headers
        )
        elapsed = time.perf_counter() - began
        status, raw = await conn.request(
            "GET", f"/jobserver/api/sweeps/{sweep_id}", headers=headers
        )
        sweep = json.loads(raw)
        return {
            "seconds": elapsed,
            "create_seconds": created,
            "succeeded": sweep["counts"]["succeeded"],
            "id": sweep_id,
        }
    finally:
        conn.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    workers = args.workers
    results: dict[str, Any] = {"jobs": args.jobs, "workers": workers, "rounds": args.rounds}
    home = pathlib.Path(tempfile.mkdtemp(prefix="jobserver-bench-sweeps-"))
    servers = {"jobserver": job_server(home / "now", workers=workers).start()}
    pool_rates, dask_rates, growth, creates = [], [], [], []
    rates: dict[str, list[float]] = {"jobserver": []}
    try:
        if args.against:
            old = checkout(args.against, pathlib.Path(tempfile.mkdtemp(prefix="jobserver-old-")))
            before = job_server(home / "before", workers=workers)
            before.python_path = [str(old)]
            servers[f"jobserver@{args.against}"] = before.start()
            rates[f"jobserver@{args.against}"] = []
        for server in servers.values():
            # a first small sweep warms the workers and the server's code paths
            asyncio.run(sweep_once(server.base, server.token, 200))
        for _ in range(args.rounds):  # interleaved, so drift in machine load hits all alike
            pool_rates.append(bare_pool(args.jobs, workers))
            rate = dask_map(args.jobs, workers)
            if rate is not None:
                dask_rates.append(rate)
            for name, server in servers.items():
                assert server.proc is not None
                before_mib = rss_mib(server.proc.pid)
                outcome = asyncio.run(sweep_once(server.base, server.token, args.jobs))
                if outcome["succeeded"] != args.jobs:
                    raise RuntimeError(
                        f"{name}: only {outcome['succeeded']} of {args.jobs} jobs succeeded"
                    )
                rates[name].append(args.jobs / outcome["seconds"])
                if name == "jobserver":
                    growth.append(rss_mib(server.proc.pid) - before_mib)
                    creates.append(outcome["create_seconds"])
                server.call("DELETE", f"sweeps/{outcome['id']}")  # the next round starts alike
    finally:
        for server in servers.values():
            server.stop()
    results["pool_per_s"] = statistics.median(pool_rates)
    results["dask_per_s"] = statistics.median(dask_rates) if dask_rates else None
    results["jobserver_per_s"] = statistics.median(rates["jobserver"])
    results["before"] = {
        name: statistics.median(values) for name, values in rates.items() if name != "jobserver"
    }
    results["create_seconds"] = statistics.median(creates)
    results["memory_growth_mib"] = max(growth)
    results["rates"] = {"pool": pool_rates, "dask": dask_rates, **rates}
    return results


def report(results: dict[str, Any]) -> None:
    jobs, pool, dask = results["jobs"], results["pool_per_s"], results["dask_per_s"]
    server = results["jobserver_per_s"]
    print(f"{jobs} no-op calls, {results['workers']} workers, median of {results['rounds']}")
    print(f"  bare ProcessPoolExecutor   {pool:8.0f} /s   (the floor)")
    if dask is None:
        print("  distributed Client.map     skipped: distributed is not installed")
    else:
        print(f"  distributed Client.map     {dask:8.0f} /s   {dask / pool:.2f} of the floor")
    print(
        f"  job server sweep           {server:8.0f} /s   {server / pool:.2f} of the floor"
        + (f", {server / dask:.1f}x Dask" if dask else "")
    )
    for name, rate in results["before"].items():
        print(
            f"  {name:<26} {rate:8.0f} /s   {rate / pool:.2f} of the floor; "
            f"now {server / rate:.2f}x that"
        )
    print(
        f"    of which the request (validate, write {jobs} records): "
        f"{results['create_seconds']:.2f} s"
    )
    print(f"  server memory growth       {results['memory_growth_mib']:8.1f} MiB (largest)")
    goals = [
        ("jobs/s end to end >= 2000", server >= 2000),
        (">= 60% of the bare pool", server >= 0.6 * pool),
        ("memory growth < 200 MiB", results["memory_growth_mib"] < 200),
    ]
    for goal, met in goals:
        print(f"  goal {goal}: {'met' if met else 'NOT met'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", help="also measure the job server at this git revision")
    args = parser.parse_args()
    began = time.monotonic()
    results = run(args)
    results["seconds"] = round(time.monotonic() - began, 1)
    report(results)
    print(f"saved {save('sweeps', results)}")


if __name__ == "__main__":
    main()
