"""The MongoDB the tests of the MongoDB store run against.

``JUPYTER_JOBSERVER_TEST_MONGODB_URI`` names a real deployment when set; otherwise one
local wire-protocol server (``wire_server.py`` under the Python 3.13 of ``.venv-mongo``,
made by ``make mongo-server``) is started for the whole session, on the first test that
asks for it. Without either, the MongoDB tests skip with the reason, except under
``CI=true``, where they fail: CI must run them.

Every test gets a database of its own (:func:`new_database`).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import tempfile
import threading
import uuid

import pytest

TESTS = pathlib.Path(__file__).parent
ENV_URI = "JUPYTER_JOBSERVER_TEST_MONGODB_URI"
PYTHON = pathlib.Path(
    os.environ.get("JUPYTER_JOBSERVER_TEST_MONGO_PYTHON", TESTS.parent / ".venv-mongo/bin/python")
)


class WireServer:
    """The wire server in a child process, on 127.0.0.1; stopped and started again on the
    same port and data (to take MongoDB away from a running job server and give it back)."""

    def __init__(self, folder: pathlib.Path, python: pathlib.Path = PYTHON) -> None:
        self.folder = folder
        self.python = python
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    def start(self, timeout: float = 60) -> WireServer:
        """Start it and return once it accepts connections (it says so on stdout)."""
        self.proc = subprocess.Popen(
            [str(self.python), str(TESTS / "wire_server.py"), str(self.folder), str(self.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            # its own Python 3.13: nothing of this process's Python path (a job server in
            # the test process may have changed it)
            env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")},
        )
        assert self.proc.stdout is not None
        said: list[str] = []
        reader = threading.Thread(target=lambda: said.append(self.proc.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout)
        if not said or not said[0].startswith("listening "):
            self.stop()
            raise RuntimeError(f"the MongoDB wire server did not start: {said}")
        self.port = int(said[0].split()[1])
        return self

    def stop(self) -> None:
        """Stop it (closing its stdin tells it to) and wait until it is gone."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None


_server: WireServer | None = None


def server() -> WireServer:
    """The session's wire server (started on first use); skips or fails without one."""
    global _server
    if _server is None:
        if not PYTHON.exists():
            reason = (
                f"no MongoDB for the MongoDB store tests: {PYTHON} is missing (make "
                f"mongo-server makes it with Python 3.13), and {ENV_URI} is not set"
            )
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
        folder = pathlib.Path(tempfile.mkdtemp(prefix="jobserver-mongo-"))
        _server = WireServer(folder).start()
    return _server


def uri() -> str:
    """The connection string of the MongoDB the tests use."""
    return os.environ.get(ENV_URI) or server().uri


def new_database() -> str:
    """A database name no other test uses."""
    return f"jobserver_test_{uuid.uuid4().hex[:12]}"


def drop(database: str) -> None:
    """Remove a test's database (it matters on a real deployment)."""
    import pymongo

    with pymongo.MongoClient(uri(), serverSelectionTimeoutMS=5000) as client:
        client.drop_database(database)


def stop() -> None:
    """Stop the session's wire server, if one was started."""
    global _server
    if _server is not None:
        _server.stop()
        _server = None
