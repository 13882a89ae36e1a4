"""What a worker spends on one no-op job, outside of the job: folder, output, clean-up.

Run: ``.venv/bin/python benchmarks/bench_worker.py [--against REV]``

Each measurement is a fresh process that runs ``--jobs`` no-op function jobs through
:class:`~jupyter_jobserver.runtime.job.JobRunner`, as a worker does, with their folders
on the same disk as a job server's state, and times each ``run`` call. Between jobs it
waits a millisecond, about what a worker waits for its next task from the server. The
baseline is a call of the same function with nothing around it; with ``--against REV``
the runner as it was at git revision ``REV`` is measured in the same rounds.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import subprocess
import sys
import tempfile
import textwrap
from typing import Any

from _harness import ROOT, save
from bench_jobs import checkout

CHILD = textwrap.dedent(
    """
    import os, sys, time
    from jupyter_jobserver.runtime.job import JobRunner

    jobs, folder = int(sys.argv[1]), sys.argv[2]
    runner = JobRunner(lambda *a: None)
    task = {
        "process": "function",
        "spec": {"target": "jupyter_jobserver.examples.scripts:noop"},
        "args": [], "kwargs": {}, "parameters": {}, "data": None,
        "data_parameter": None, "cores": 1, "timeout": None, "max_result_bytes": 0,
    }
    runner.run({**task, "job_id": "warm", "job_dir": os.path.join(folder, "warm")})
    times = []
    for i in range(jobs):
        time.sleep(0.001)
        began = time.perf_counter()
        done = runner.run({**task, "job_id": str(i), "job_dir": os.path.join(folder, str(i))})
        times.append(time.perf_counter() - began)
        assert done["status"] == "succeeded", done
    from jupyter_jobserver.examples.scripts import noop
    bare = []
    for _ in range(jobs):
        began = time.perf_counter()
        noop()
        bare.append(time.perf_counter() - began)
    times.sort(); bare.sort()
    print(times[len(times) // 2], bare[len(bare) // 2])
    """
)


def measure(python_path: str, jobs: int, home: pathlib.Path) -> tuple[float, float]:
    folder = tempfile.mkdtemp(prefix="jobs-", dir=home)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(jobs), folder],
        env={"PYTHONPATH": python_path, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", help="also measure the runner at this git revision")
    args = parser.parse_args()
    home = pathlib.Path(tempfile.mkdtemp(prefix="jobserver-bench-worker-"))
    paths = {"jobserver": str(ROOT)}
    if args.against:
        old = checkout(args.against, pathlib.Path(tempfile.mkdtemp(prefix="jobserver-old-")))
        paths[f"jobserver@{args.against}"] = str(old)
    medians: dict[str, list[float]] = {name: [] for name in paths}
    bare: list[float] = []
    try:
        for _ in range(args.rounds):  # interleaved, so drift in machine load hits all alike
            for name, path in paths.items():
                per_job, call = measure(path, args.jobs, home)
                medians[name].append(per_job)
                bare.append(call)
    finally:
        subprocess.run(["rm", "-rf", str(home)], check=False)
    results: dict[str, Any] = {"jobs": args.jobs, "rounds": args.rounds}
    results["per_job_us"] = {n: statistics.median(v) * 1e6 for n, v in medians.items()}
    results["bare_call_us"] = statistics.median(bare) * 1e6
    now = results["per_job_us"]["jobserver"]
    print(f"no-op job through JobRunner.run, median of {args.rounds} x {args.jobs}")
    print(f"  bare call                {results['bare_call_us']:10.1f} us   (the floor)")
    for name, us in results["per_job_us"].items():
        extra = "" if name == "jobserver" else f"   now {now / us:.2f}x that"
        print(f"  {name:<24} {us:10.1f} us{extra}")
    print(f"saved {save('worker', results)}")


if __name__ == "__main__":
    main()
