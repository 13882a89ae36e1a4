"""A trivial parameterised notebook as a job, against the usual ways to run one.

Run: ``.venv/bin/python benchmarks/bench_notebook_jobs.py [--rounds N]``

Three ways to run the same two-cell notebook, interleaved round by round in one run so
that drift in the machine's load hits all of them alike:

* **job**: ``POST jobs?wait=60`` with new parameter values, answered once the job has
  succeeded (submission to a stored, succeeded job, the executed notebook kept); the
  worker's kernel was started ahead of the job;
* **nbconvert**: ``jupyter nbconvert --to notebook --execute`` of the notebook (a new
  process and a new kernel each time; it cannot take parameters, so it runs the
  defaults);
* **papermill**: ``papermill in.ipynb out.ipynb -p x N``, when papermill is installed
  (otherwise it is skipped, and the run says so).

Goal: the job at least 5 times faster than nbconvert (medians). Machines here are shared
and noisy: the ratios matter more than the seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import nbformat
from _harness import Connection, job_server, save

GOAL = 5.0


def write_notebook(folder: pathlib.Path) -> pathlib.Path:
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell("result = x * 2\nprint(result)"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"}},
    )
    path = folder / "trivial.ipynb"
    nbformat.write(notebook, path)
    return path


def timed(command: list[str]) -> float:
    began = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - began


async def main(rounds: int) -> dict:
    home = pathlib.Path(tempfile.mkdtemp(prefix="bench-notebooks-"))
    notebooks = home / "notebooks"
    notebooks.mkdir()
    source = write_notebook(notebooks)
    server = job_server(home, workers=1, script_dirs=[str(notebooks)]).start()
    headers = {"Authorization": f"token {server.token}", "Content-Type": "application/json"}
    bindir = pathlib.Path(sys.executable).parent
    nbconvert = [str(bindir / "jupyter"), "nbconvert", "--to", "notebook", "--execute"]
    has_papermill = importlib.util.find_spec("papermill") is not None
    times: dict[str, list[float]] = {"job": [], "nbconvert": []}
    if has_papermill:
        times["papermill"] = []
    else:
        print("papermill is not installed: skipped (pip install papermill to compare)")
    conn = await Connection.open(server.base)

    async def job(value: int) -> float:
        body = json.dumps({"script": "trivial", "kwargs": {"x": value}, "run": True}).encode()
        began = time.perf_counter()
        status, raw = await conn.request("POST", "/jobserver/api/jobs?wait=60", body, headers)
        elapsed = time.perf_counter() - began
        record = json.loads(raw)
        if status != 201 or record["status"] != "succeeded" or record["result"] != value * 2:
            raise RuntimeError(f"the job did not succeed: {status} {raw[:300]!r}")
        return elapsed

    try:
        for value in range(2):  # the first job starts the worker's first kernel
            await job(value)
        for n in range(rounds):
            times["job"].append(await job(n + 10))
            out = home / f"nbconvert-{n}.ipynb"
            times["nbconvert"].append(
                await asyncio.to_thread(timed, [*nbconvert, "--output", str(out), str(source)])
            )
            if has_papermill:
                out = home / f"papermill-{n}.ipynb"
                command = [sys.executable, "-m", "papermill", str(source), str(out)]
                times["papermill"].append(
                    await asyncio.to_thread(timed, [*command, "-p", "x", str(n)])
                )
    finally:
        conn.close()
        server.stop()
    medians = {name: statistics.median(values) for name, values in times.items()}
    results: dict = {
        "rounds": rounds,
        "median_s": medians,
        "ratios": {
            f"{name}/job": medians[name] / medians["job"] for name in medians if name != "job"
        },
    }
    results["goal"] = f"nbconvert/job >= {GOAL:g}"
    results["goal_met"] = results["ratios"]["nbconvert/job"] >= GOAL
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    results = asyncio.run(main(args.rounds))
    for name, median in results["median_s"].items():
        print(f"{name:>10}: median {median * 1000:8.1f} ms")
    for name, ratio in results["ratios"].items():
        print(f"{name:>16}: {ratio:6.1f}x")
    print(f"goal {results['goal']}: {'met' if results['goal_met'] else 'NOT met'}")
    print("saved", save("notebook_jobs", results))
