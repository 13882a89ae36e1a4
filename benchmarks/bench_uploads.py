"""Uploading a large datafile: PUT datafiles/{name} against Jupyter's Contents API and cp.

Run: ``.venv/bin/python benchmarks/bench_uploads.py [--size-mib 1024]``

In one run, the same file is uploaded three ways:

* ``PUT datafiles/{name}`` with the raw file as the body (curl ``--upload-file``);
* Jupyter's Contents API the way JupyterLab's file browser uploads a large file: 1 MiB
  chunks, each base64 in a JSON ``PUT /api/contents/{path}``;
* ``cp`` into the data folder, the floor for writing the bytes at all.

It prints each throughput, the ratios, and how much the server's resident memory grew at
its peak during each upload (sampled every few milliseconds).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading
import time

from _harness import Connection, job_server, save


class PeakMemory:
    """Samples a process's resident memory in a thread; reports the growth at the peak."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def _rss(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def __enter__(self) -> PeakMemory:
        self.base = self._rss()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.base) / (1 << 20)


def make_file(path: pathlib.Path, size: int) -> None:
    block = os.urandom(1 << 20)
    with path.open("wb") as f:
        for _ in range(size >> 20):
            f.write(block)


def upload_put(server, source: pathlib.Path, name: str) -> None:
    subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--fail",
            "--upload-file",
            str(source),
            "-H",
            f"Authorization: token {server.token}",
            "-H",
            "Expect:",
            f"{server.base}/jobserver/api/datafiles/{name}",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


async def upload_contents(server, source: pathlib.Path, size: int, path: str) -> None:
    """What JupyterLab's file browser does for a large file."""
    conn = await Connection.open(server.base)
    headers = {"Authorization": f"token {server.token}", "Content-Type": "application/json"}
    chunk_size = 1 << 20
    try:
        with source.open("rb") as f:
            number = 0
            while True:
                block = f.read(chunk_size)
                if not block:
                    break
                number += 1
                last = f.tell() >= size
                body = json.dumps(
                    {
                        "name": os.path.basename(path),
                        "path": path,
                        "type": "file",
                        "format": "base64",
                        "chunk": -1 if last else number,
                        "content": base64.b64encode(block).decode("ascii"),
                    }
                ).encode()
                status, raw = await conn.request("PUT", f"/api/contents/{path}", body, headers)
                if status not in (200, 201):
                    raise RuntimeError(f"contents upload failed: {status} {raw[:200]!r}")
    finally:
        conn.close()


def timed(action) -> float:
    """Seconds ``action`` takes, starting with no dirty pages from an earlier upload
    waiting to be written (they would slow whichever measurement comes next)."""
    os.sync()
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    size = args.size_mib << 20
    home = pathlib.Path(tempfile.mkdtemp(prefix="jobserver-upload-bench-"))
    source = home / "source.csv"
    make_file(source, size)
    server = job_server(home, workers=1).start()
    data = home / "root" / "data"
    data.mkdir(parents=True, exist_ok=True)
    results: dict = {"size_bytes": size}
    try:
        with PeakMemory(server.proc.pid) as memory:
            seconds = timed(lambda: upload_put(server, source, "via-put.csv"))
        assert (data / "via-put.csv").stat().st_size == size
        results["put"] = {"seconds": seconds, "growth_mib": memory.growth_mib}

        with PeakMemory(server.proc.pid) as memory:
            seconds = timed(
                lambda: asyncio.run(upload_contents(server, source, size, "data/via-contents.csv"))
            )
        assert (data / "via-contents.csv").stat().st_size == size
        results["contents"] = {"seconds": seconds, "growth_mib": memory.growth_mib}

        seconds = timed(lambda: shutil.copyfile(source, data / "via-cp.csv"))
        results["cp"] = {"seconds": seconds}
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)

    mb = size / 1e6
    for name in ("put", "contents", "cp"):
        results[name]["mb_per_s"] = mb / results[name]["seconds"]
    put, contents, cp = results["put"], results["contents"], results["cp"]
    print(f"upload of {args.size_mib} MiB")
    print(f"{'':32}{'MB/s':>10}{'peak memory growth':>22}")
    for label, row in (("PUT datafiles/{name}", put), ("Contents API (1 MiB base64)", contents)):
        print(f"{label:32}{row['mb_per_s']:>10.0f}{row['growth_mib']:>18.1f} MiB")
    print(f"{'cp':32}{cp['mb_per_s']:>10.0f}")
    print(f"PUT / Contents API: {put['mb_per_s'] / contents['mb_per_s']:.1f}x (goal: >= 10x)")
    print(f"PUT / cp: {put['mb_per_s'] / cp['mb_per_s']:.2f}")
    print(f"PUT memory growth: {put['growth_mib']:.1f} MiB (goal: < 64 MiB)")
    print(f"saved {save('uploads', results)}")


if __name__ == "__main__":
    main()
