"""Latency and throughput of no-op jobs through the REST API, against a floor.

Run: ``.venv/bin/python benchmarks/bench_jobs.py`` (``--against REV`` also measures the
job server as it was at git revision ``REV``, side by side in the same run)

The job server runs a registered no-op function as a job: ``POST jobs?wait=30`` with
``{"script": "noop", "run": true}`` answers when the job has succeeded, so one request is
the whole trip from submission to a stored, succeeded job.

The floor, measured in the same run with the same client, is the least any server could
do for the same trip: a minimal Tornado handler that hands the call to a warm
``concurrent.futures.ProcessPoolExecutor`` and answers with its result. Machines here are
shared and noisy, so the ratios matter more than the milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

from _harness import Connection, concurrent, job_server, save, sequential, summary

from jupyter_jobserver.testing import free_port

FLOOR_SERVER = textwrap.dedent(
    """
    import asyncio, concurrent.futures, json, sys
    from tornado import web

    def noop():
        return None

    class Run(web.RequestHandler):
        async def post(self):
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(POOL, noop)
            self.finish(json.dumps({"status": "succeeded", "result": result}))

    async def main(port):
        app = web.Application([(r"/run", Run)])
        app.listen(port, "127.0.0.1")
        for f in [loop.run_in_executor(POOL, noop) for loop in [asyncio.get_running_loop()] * 8]:
            await f
        print("ready", flush=True)
        await asyncio.Event().wait()

    if __name__ == "__main__":
        POOL = concurrent.futures.ProcessPoolExecutor(int(sys.argv[2]))
        asyncio.run(main(int(sys.argv[1])))
    """
)


def start_floor(workers: int) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", FLOOR_SERVER, str(port), str(workers)],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its pool goes with it
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("the floor server did not start")
    return proc, f"http://127.0.0.1:{port}"


def checkout(revision: str, folder: pathlib.Path) -> pathlib.Path:
    """The package as it was at ``revision``, unpacked into ``folder`` (for PYTHONPATH)."""
    root = pathlib.Path(__file__).resolve().parent.parent
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", revision, "jupyter_jobserver"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


async def run(args: argparse.Namespace) -> dict:
    workers = os.cpu_count() or 2
    floor_proc, floor_url = start_floor(workers)
    home = pathlib.Path(tempfile.mkdtemp(prefix="jobserver-bench-"))
    server = job_server(home / "now", workers=workers).start()
    servers = {"jobserver": server}
    if args.against:
        old = checkout(args.against, pathlib.Path(tempfile.mkdtemp(prefix="jobserver-old-")))
        before = job_server(home / "before", workers=workers)
        before.python_path = [str(old)]
        servers[f"jobserver@{args.against}"] = before.start()
    headers = {"Authorization": f"token {server.token}", "Content-Type": "application/json"}
    body = json.dumps({"script": "noop", "run": True}).encode()

    async def job(conn: Connection) -> None:
        status, raw = await conn.request("POST", "/jobserver/api/jobs?wait=30", body, headers)
        if status != 201 or json.loads(raw)["status"] != "succeeded":
            raise RuntimeError(f"job did not succeed: {status} {raw[:200]!r}")

    async def floor(conn: Connection) -> None:
        status, _ = await conn.request("POST", "/run", b"{}")
        if status != 200:
            raise RuntimeError(f"floor failed: {status}")

    try:
        results: dict = {"workers": workers, "jobs": args.jobs, "sequential": args.sequential}
        # interleave them, so drift in machine load hits all alike
        seq: dict[str, list[float]] = {name: [] for name in [*servers, "floor"]}
        tput: dict[str, list[float]] = {name: [] for name in seq}
        per_round = args.sequential // args.rounds
        for _ in range(args.rounds):
            seq["floor"] += await sequential(floor_url, floor, per_round)
            for name, each in servers.items():
                seq[name] += await sequential(each.base, job, per_round)
        results["latency"] = {name: summary(times) for name, times in seq.items()}
        for _ in range(args.rounds):
            tput["floor"].append(await concurrent(floor_url, floor, args.jobs, args.connections))
            for name, each in servers.items():
                tput[name].append(await concurrent(each.base, job, args.jobs, args.connections))
        results["throughput"] = {name: max(rates) for name, rates in tput.items()}
        listing = server.call("GET", "jobs?limit=1")
        expected = args.rounds * (args.jobs + args.sequential // args.rounds) + 30 * args.rounds
        results["jobs_recorded"] = listing["total"]
        results["jobs_expected"] = expected
    finally:
        for each in servers.values():
            each.stop()
        os.killpg(floor_proc.pid, signal.SIGKILL)
        floor_proc.wait()
    return results


def report(results: dict) -> None:
    lat = results["latency"]
    tput = results["throughput"]
    ratio = lat["jobserver"]["median_ms"] / lat["floor"]["median_ms"]
    print(f"no-op job, POST jobs?wait (run) to succeeded, {results['workers']} workers")
    print(f"{'':28}{'median ms':>12}{'p99 ms':>12}{'/ floor':>10}")
    for name in lat:
        median = lat[name]["median_ms"]
        print(
            f"{name:28}{median:>12.2f}{lat[name]['p99_ms']:>12.2f}"
            f"{median / lat['floor']['median_ms']:>9.2f}x"
        )
    print(f"median ratio jobserver/floor: {ratio:.2f}x (goal: within 3x)")
    print(f"throughput, {results['jobs']} concurrent jobs:")
    for name, rate in tput.items():
        print(f"  {name:26}{rate:8.0f} /s   ratio to floor {rate / tput['floor']:.2f}")
    print("  (goal: >= 500 jobs/s)")
    print(f"jobs recorded: {results['jobs_recorded']} of {results['jobs_expected']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=600, help="jobs timed one by one")
    parser.add_argument("--jobs", type=int, default=1000, help="jobs submitted concurrently")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", help="also measure the job server at this git revision")
    args = parser.parse_args()
    began = time.monotonic()
    results = asyncio.run(run(args))
    results["seconds"] = round(time.monotonic() - began, 1)
    report(results)
    print(f"saved {save('jobs', results)}")


if __name__ == "__main__":
    main()
