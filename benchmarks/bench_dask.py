"""No-op jobs on the Dask executor, against the local executor and against bare Dask.

Run: ``.venv/bin/python benchmarks/bench_dask.py`` (``pip install -e '.[dask]'``)

In one run, on one 2-worker ``LocalCluster`` (separate worker processes, one thread each):

* ``local``: 1,000 no-op jobs through the REST API of a job server on the local
  executor (2 warm workers);
* ``dask``: the same through a job server on the Dask executor, on the cluster;
* ``bare dask``: the same 1,000 no-op calls through ``distributed.Client.map`` (and,
  for latency, ``Client.submit(...).result()`` one after another) on the same cluster.

A job through the REST API is ``POST jobs?wait=30`` with ``{"script": "noop", "run":
true}``: it answers once the job is stored as succeeded. Throughput is jobs per second
with all of them in flight (64 connections); latency is the median of jobs made one
after another. The goal: the Dask executor's throughput within 2x of bare Dask.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import tempfile
import time
from typing import Any

from _harness import LEAN_EXTENSIONS, Connection, concurrent, save, sequential, summary

from jupyter_jobserver.examples.scripts import noop
from jupyter_jobserver.testing import ServerProcess


def job_server(home: pathlib.Path, **sections: Any) -> ServerProcess:
    config: dict[str, Any] = {
        "ServerApp": {"jpserver_extensions": LEAN_EXTENSIONS},
        "JobServerApp": {"state_dir": str(home / "state")},
    }
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    return ServerProcess(home, config)


def bare_dask(client: Any, jobs: int, count: int) -> dict[str, Any]:
    """The same no-op calls straight through Dask: ``map`` for throughput, one
    ``submit(...).result()`` after another for latency."""
    for _ in range(30):  # as the servers get a warm-up
        client.submit(noop, pure=False).result()
    times = []
    for _ in range(count):
        began = time.perf_counter()
        client.submit(noop, pure=False).result()
        times.append(time.perf_counter() - began)
    began = time.perf_counter()
    client.gather(client.map(lambda _: noop(), range(jobs), pure=False))
    rate = jobs / (time.perf_counter() - began)
    return {"latency": summary(times), "throughput": rate}


async def rest(servers: dict[str, ServerProcess], args: argparse.Namespace) -> dict[str, Any]:
    body = json.dumps({"script": "noop", "run": True}).encode()
    out: dict[str, Any] = {}
    for name, server in servers.items():
        headers = {"Authorization": f"token {server.token}", "Content-Type": "application/json"}

        async def job(conn: Connection, headers: dict[str, str] = headers) -> None:
            status, raw = await conn.request("POST", "/jobserver/api/jobs?wait=30", body, headers)
            if status != 201 or json.loads(raw)["status"] != "succeeded":
                raise RuntimeError(f"job did not succeed: {status} {raw[:200]!r}")

        times = await sequential(server.base, job, args.sequential)
        rate = await concurrent(server.base, job, args.jobs, args.connections)
        out[name] = {"latency": summary(times), "throughput": rate}
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from distributed import Client, LocalCluster

    home = pathlib.Path(tempfile.mkdtemp(prefix="jobserver-bench-dask-"))
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        resources={"cores": 1},
        dashboard_address=":0",
    )
    client = Client(cluster)
    servers: dict[str, ServerProcess] = {}
    try:
        servers["local"] = job_server(
            home / "local", LocalExecutor={"workers": 2, "total_cores": 2}
        ).start()
        servers["dask"] = job_server(
            home / "dask",
            JobServerApp={
                "state_dir": str(home / "dask" / "state"),
                "executor_class": "jupyter_jobserver.executor.dask.DaskExecutor",
            },
            DaskExecutor={"scheduler_address": cluster.scheduler_address},
        ).start()
        results = asyncio.run(rest(servers, args))
        results["bare dask"] = bare_dask(client, args.jobs, args.sequential)
        results["jobs_recorded"] = servers["dask"].call("GET", "jobs?limit=1")["total"]
    finally:
        for server in servers.values():
            server.stop()
        client.close()
        cluster.close()
    return {"jobs": args.jobs, "sequential": args.sequential, "results": results}


def report(run: dict[str, Any]) -> None:
    results = run["results"]
    bare = results["bare dask"]
    print(
        f"no-op jobs on a 2-worker LocalCluster: {run['jobs']} concurrent, "
        f"{run['sequential']} one by one"
    )
    print(f"{'':12}{'jobs/s':>10}{'/ bare':>9}{'median ms':>12}{'p99 ms':>10}{'/ bare':>9}")
    for name in ("local", "dask", "bare dask"):
        each = results[name]
        median = each["latency"]["median_ms"]
        print(
            f"{name:12}{each['throughput']:>10.0f}{each['throughput'] / bare['throughput']:>8.2f}x"
            f"{median:>12.2f}{each['latency']['p99_ms']:>10.2f}"
            f"{median / bare['latency']['median_ms']:>8.2f}x"
        )
    ratio = bare["throughput"] / results["dask"]["throughput"]
    verdict = "met" if ratio <= 2 else "not met"
    print(f"bare dask / dask executor throughput: {ratio:.2f}x (goal: within 2x, {verdict})")
    dask, local = results["dask"], results["local"]
    print(
        f"dask / local executor: throughput {dask['throughput'] / local['throughput']:.2f}x, "
        f"median latency {dask['latency']['median_ms'] / local['latency']['median_ms']:.2f}x"
    )
    expected = run["jobs"] + run["sequential"] + 30
    print(f"dask jobs recorded: {results['jobs_recorded']} of {expected}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="jobs submitted concurrently")
    parser.add_argument("--sequential", type=int, default=200, help="jobs timed one by one")
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    began = time.monotonic()
    results = run(args)
    results["seconds"] = round(time.monotonic() - began, 1)
    report(results)
    print(f"saved {save('dask', results)}")


if __name__ == "__main__":
    main()
