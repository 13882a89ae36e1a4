"""What the benchmarks share: a lean HTTP client, timing summaries, a job server to measure.

The client keeps connections alive and does nothing else, so the numbers are about the
servers, and the same client drives the job server and the baseline it is compared with.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jupyter_jobserver.testing import ServerProcess  # noqa: E402

LEAN_EXTENSIONS = {
    "jupyter_jobserver": True,
    "jupyterlab": False,
    "jupyter_lsp": False,
    "notebook_shim": False,
    "jupyter_server_terminals": False,
}


class Connection:
    """One keep-alive HTTP/1.1 connection that keeps cookies, as a browser or an HTTP
    client session does."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str):
        self.reader, self.writer, self.host = reader, writer, host
        self.cookies: dict[str, str] = {}

    @classmethod
    async def open(cls, base: str) -> Connection:
        parts = urlsplit(base)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer, parts.netloc)

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if self.cookies:
            head.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        chunked = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name.lower() == "set-cookie":
                key, _, rest = value.strip().partition("=")
                self.cookies[key] = rest.split(";")[0]
        if chunked:
            data = bytearray()
            while True:
                size = int((await self.reader.readline()).strip(), 16)
                if size == 0:
                    await self.reader.readline()
                    break
                data += await self.reader.readexactly(size)
                await self.reader.readline()
            return status, bytes(data)
        return status, await self.reader.readexactly(length) if length else b""

    def close(self) -> None:
        self.writer.close()


Call = Callable[[Connection], Awaitable[None]]


async def sequential(base: str, call: Call, count: int, warmup: int = 30) -> list[float]:
    """Latencies in seconds of ``count`` calls made one after another on one connection."""
    conn = await Connection.open(base)
    try:
        for _ in range(warmup):
            await call(conn)
        times = []
        for _ in range(count):
            began = time.perf_counter()
            await call(conn)
            times.append(time.perf_counter() - began)
        return times
    finally:
        conn.close()


async def concurrent(base: str, call: Call, count: int, connections: int) -> float:
    """Calls per second when ``count`` calls are all in flight over ``connections``."""
    conns = [await Connection.open(base) for _ in range(connections)]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def drain(conn: Connection) -> None:
        while True:
            try:
                queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await call(conn)

    began = time.perf_counter()
    await asyncio.gather(*(drain(c) for c in conns))
    elapsed = time.perf_counter() - began
    for conn in conns:
        conn.close()
    return count / elapsed


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


def job_server(home: pathlib.Path, **jobserver: Any) -> ServerProcess:
    """A lean job server (no other extensions) on a fresh store."""
    config = {
        "ServerApp": {"jpserver_extensions": LEAN_EXTENSIONS},
        "JobServerApp": {"state_dir": str(home / "state"), **jobserver},
    }
    return ServerProcess(home, config)


def save(name: str, results: dict[str, Any]) -> pathlib.Path:
    folder = ROOT / "benchmarks" / "results"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(results, indent=2))
    return path
