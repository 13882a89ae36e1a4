"""A real Jupyter server with the job server, in a child process.

For tests that stop or kill a server, for notebooks executed against a live server, and
for benchmarks; script authors can use it in their own test suites too::

    with ServerProcess(tmp_path, {"JobServerApp": {"scripts": {...}}}) as server:
        job = server.call("POST", "jobs?wait=60", {"script": "mine", "run": True})
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from typing import Any

#: what the server logs once the job server has started, or has failed to
READY = re.compile(r"jobserver \S+ \| \d+ script\(s\)|jobserver: the job server could not start")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: headless Chromium for UI tests and benchmarks: no sandbox (as root), and none of the
#: background traffic a closed network refuses
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class ServerProcess:
    """``jupyter server`` with the job server, configured through a config file."""

    def __init__(
        self,
        home: pathlib.Path,
        config: dict[str, Any],
        token: str = "secret",
        python_path: list[str] | None = None,
        port: int | None = None,
        runtime_dir: pathlib.Path | None = None,
    ) -> None:
        self.home = home
        #: where it writes its runtime file (servers that share one find each other there)
        self.runtime_dir = runtime_dir or home / "runtime"
        self.python_path = python_path or []
        self.token = token
        self.port = port or free_port()
        self.config_dir = home / "config"
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (home / "root").mkdir(exist_ok=True)
        (self.config_dir / "jupyter_server_config.json").write_text(json.dumps(config))
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._exited = threading.Event()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> ServerProcess:
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(self.config_dir),
            "JUPYTER_DATA_DIR": str(self.home / "data"),
            "JUPYTER_RUNTIME_DIR": str(self.runtime_dir),
            "PYTHONPATH": os.pathsep.join([*self.python_path, os.environ.get("PYTHONPATH", "")]),
        }
        self._ready.clear()
        self._exited.clear()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyter_server",
                "--no-browser",
                "--allow-root",
                f"--port={self.port}",
                "--ip=127.0.0.1",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.home / 'root'}",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        if not self._ready.wait(timeout) or self._exited.is_set():
            self.stop()
            raise RuntimeError("the server did not start:\n" + "".join(self.lines[-40:]))
        return self

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        with proc.stderr:  # closed once the server has exited, whoever stopped it
            for line in proc.stderr:
                self.lines.append(line)
                if READY.search(line):
                    self._ready.set()
        self._exited.set()
        self._ready.set()

    def request(
        self, method: str, path: str, body: Any = None, prefix: str = "jobserver/api/"
    ) -> tuple[int, Any]:
        """A request to ``{base}/{prefix}{path}``: its status and decoded answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base}/{prefix}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """The decoded answer of a job server request that must succeed."""
        status, answer = self.request(method, path, body)
        assert 200 <= status < 300, (status, answer)
        return answer

    def call_api(self, method: str, path: str, body: Any = None) -> Any:
        """The decoded answer of a request to any Jupyter server path that must succeed."""
        status, answer = self.request(method, path, body, prefix="")
        assert 200 <= status < 300, (status, answer)
        return answer

    def signal(self, sig: int) -> int:
        """Send a signal and wait for the server to exit; returns its exit code."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(60)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
