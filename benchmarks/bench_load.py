"""Load: 50 clients at once for a while, with no errors and flat memory, against a floor.

Run: ``.venv/bin/python benchmarks/bench_load.py [--clients 50] [--seconds 30]``

Each client keeps one connection and loops over a user's mix: run a no-op job and wait
for it (``POST jobs?wait=30``), read it, list jobs, query them. The floor, measured on the
same server in the same run with the same client, is Jupyter's own ``GET api/status``:
the least an authenticated request costs there. It prints the median latency of each,
their ratio, the errors (the goal is none) and the server's resident memory before, after
a first round and after the last (the goal: the last within 20% of the first round's).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import tempfile
import time

from _harness import Connection, job_server, save, summary


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def load(base: str, token: str, clients: int, seconds: float) -> dict:
    headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
    run = json.dumps({"script": "noop", "run": True}).encode()
    query = json.dumps({"filter": {"status": "succeeded"}, "limit": 10}).encode()
    times: dict[str, list[float]] = {"job": [], "read": [], "floor": []}
    errors: list[str] = []
    deadline = time.monotonic() + seconds

    async def timed(
        kind: str, conn: Connection, method: str, path: str, body: bytes = b""
    ) -> bytes:
        began = time.perf_counter()
        status, raw = await conn.request(method, path, body, headers)
        times[kind].append(time.perf_counter() - began)
        if not 200 <= status < 300:
            errors.append(f"{method} {path}: {status} {raw[:200]!r}")
        return raw

    async def client() -> None:
        conn = await Connection.open(base)
        try:
            while time.monotonic() < deadline:
                raw = await timed("job", conn, "POST", "/jobserver/api/jobs?wait=30", run)
                job_id = json.loads(raw).get("id", "none")
                await timed("read", conn, "GET", f"/jobserver/api/jobs/{job_id}")
                await timed("read", conn, "GET", "/jobserver/api/jobs?limit=10")
                await timed("read", conn, "POST", "/jobserver/api/jobs/query", query)
                await timed("floor", conn, "GET", "/api/status")
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return {"times": times, "errors": errors}


async def main(args: argparse.Namespace) -> dict:
    home = pathlib.Path(tempfile.mkdtemp(prefix="jobserver-load-"))
    server = job_server(home, workers=os.cpu_count() or 2).start()
    try:
        pid = server.proc.pid
        memory = {"start_mib": rss_mib(pid)}
        first = await load(server.base, server.token, args.clients, min(5.0, args.seconds))
        memory["after_first_round_mib"] = rss_mib(pid)
        rest = await load(server.base, server.token, args.clients, args.seconds)
        memory["end_mib"] = rss_mib(pid)
    finally:
        server.stop()
    times = rest["times"]
    results = {
        "clients": args.clients,
        "seconds": args.seconds,
        "requests": sum(len(t) for t in times.values()),
        "errors": len(first["errors"]) + len(rest["errors"]),
        "error_examples": (first["errors"] + rest["errors"])[:5],
        "latency": {kind: summary(t) for kind, t in times.items() if t},
        "memory": memory,
    }
    floor = results["latency"]["floor"]["median_ms"]
    results["ratios_to_floor"] = {
        kind: results["latency"][kind]["median_ms"] / floor for kind in ("job", "read")
    }
    growth = memory["end_mib"] / max(memory["after_first_round_mib"], 1e-9)
    results["memory_growth"] = growth
    results["goals"] = {"no_errors": results["errors"] == 0, "flat_memory": growth <= 1.2}
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    results = asyncio.run(main(parser.parse_args()))
    print(json.dumps(results, indent=2))
    print(f"saved {save('load', results)}")
