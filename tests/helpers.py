"""What the tests share: the test server's configuration, and a small REST client over
real HTTP (Jupyter's own test fixtures give the connection; see ``conftest.py``)."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
from typing import Any
from urllib.parse import quote, urlencode

from jupyter_server.auth.identity import IdentityProvider, User
from tornado.httpclient import HTTPClientError

TESTS = pathlib.Path(__file__).parent

FILESCRIPTS = TESTS / "filescripts"
ARGS_PARAMETERS = {
    "n": {"type": "integer"},
    "flag": {"type": "boolean", "default": False},
    "items": {"type": "array", "items": {"type": "integer"}, "default": []},
    "label": {"type": "string", "default": "x y"},
}
FILE_SCRIPTS = {
    f"args_{style}": {
        "file": str(FILESCRIPTS / "echoargs.py"),
        "arguments": style,
        "parameters": ARGS_PARAMETERS,
        "data": ["datafile", "mongodb", "raw_data"],
    }
    for style in ("options", "positional", "json")
}
FILE_SCRIPTS["tree"] = {"file": str(FILESCRIPTS / "tree.sh"), "description": "children"}
FILE_SCRIPTS["true"] = {"file": "/bin/true"}
FILE_SCRIPTS["args_gap"] = {  # an optional parameter with no default, then defaulted ones
    "file": str(FILESCRIPTS / "echoargs.py"),
    "arguments": "positional",
    "required": [],
    "parameters": {"input": {"type": "string"}, "limit": {"type": "integer", "default": 10}},
}
FILE_SCRIPTS["quick_progress"] = {  # three progress lines at once, then done
    "file": "/bin/sh",
    "command": [
        "/bin/sh",
        "-c",
        "printf '0.1 a\\n0.2 b\\n0.3 c\\n' >&$JUPYTER_JOBSERVER_PROGRESS_FD",
    ],
}
FILE_SCRIPTS["misbehaving"] = {
    "file": str(FILESCRIPTS / "misbehaving.py"),
    "parameters": {"how": {"enum": ["bad_result", "killed", "progress_storm"]}},
}

TEST_SCRIPTS = {
    name: f"jobserver_test_scripts:{name}"
    for name in (
        "echo",
        "sleepy",
        "spawn_children",
        "kill_self",
        "results",
        "big",
        "raises",
        "two_cores",
        "progress_steps",
        "noop",
        "leaky_thread",
        "misbehave",
        "inf_default",
        "worker_pid",
        "types_demo",
        "pid_then_sleep",
        "describe_data",
        "file_info",
        "array_shape",
        "column_sum",
        "table_mean",
        "gated",
        "parallel_squares",
        "print_lots",
        "total",
        "logs",
        "optional_data",
        "ledger",
        "power",
        "moments",
    )
}


def jobserver_config(tmp_path: pathlib.Path, **extra: Any) -> dict[str, Any]:
    """Server configuration for tests: temporary folders, two workers, test scripts."""
    config: dict[str, Any] = {
        "ServerApp": {"jpserver_extensions": {"jupyter_jobserver": True}},
        "JobServerApp": {
            "state_dir": str(tmp_path / "state"),
            "workers": 2,
            "scripts": {**TEST_SCRIPTS, **FILE_SCRIPTS},
            "script_dirs": [str(FILESCRIPTS)],
        },
        "LocalExecutor": {
            "total_cores": 2,
            "worker_env": {
                "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
            },
        },
    }
    for section, values in extra.items():
        config.setdefault(section, {}).update(values)
    return config


class Answer:
    """A response: status, headers and decoded body."""

    def __init__(self, code: int, headers: Any, body: bytes) -> None:
        self.code = code
        self.headers = headers
        self.body = body

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def text(self) -> str:
        return self.body.decode()

    def __repr__(self) -> str:
        return f"<Answer {self.code} {self.body[:300]!r}>"


class Api:
    """Calls the REST API of the test server over real HTTP."""

    def __init__(self, fetch: Any, headers: dict[str, str] | None = None) -> None:
        self._fetch = fetch
        self.headers = headers

    async def call(
        self,
        method: str,
        path: str | tuple[str, ...],
        body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        **extra: Any,
    ) -> Answer:
        kwargs: dict[str, Any] = {"method": method, **extra}
        if raw is not None or "body_producer" in extra:
            kwargs["body"] = raw
        elif body is not None or method in ("POST", "PUT", "PATCH"):
            kwargs["body"] = json.dumps(body if body is not None else {})
        kwargs["allow_nonstandard_methods"] = True
        merged = {**(self.headers or {}), **(headers or {})}
        if merged:
            kwargs["headers"] = merged
        segments = path if isinstance(path, tuple) else path.strip("/").split("/")
        url = "/".join(quote(p, safe="") for p in segments)
        if params:
            url += "?" + urlencode(params)
        try:
            response = await self._fetch(url, **kwargs)
        except HTTPClientError as exc:
            assert exc.response is not None, exc
            response = exc.response
        return Answer(response.code, response.headers, response.body or b"")

    async def get(self, path: str, **kw: Any) -> Answer:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return await self.call("POST", path, body, **kw)

    async def patch(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return await self.call("PATCH", path, body, **kw)

    async def put(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return await self.call("PUT", path, body, **kw)

    async def delete(self, path: str, **kw: Any) -> Answer:
        return await self.call("DELETE", path, **kw)

    async def run(self, script: str, wait: float = 60, **body: Any) -> dict[str, Any]:
        """Create and run a job, wait for it to end, return the finished record."""
        created = await self.post("jobs", {"script": script, "run": True, **body})
        assert created.code == 201, created
        return await self.wait(created.json["id"], wait)

    async def run_eval(self, code: str, wait: float = 60, **body: Any) -> dict[str, Any]:
        """Create and run an eval job, wait for it to end, return the finished record."""
        created = await self.post("jobs", {"process": "eval", "code": code, "run": True, **body})
        assert created.code == 201, created
        return await self.wait(created.json["id"], wait)

    async def wait(self, job_id: str, wait: float = 60) -> dict[str, Any]:
        answer = await self.get(f"jobs/{job_id}", params={"wait": wait})
        assert answer.code == 200, answer
        return answer.json

    async def wait_until(self, job_id: str, status: str, wait: float = 60) -> dict[str, Any]:
        """The job once it reached ``status`` (or a later one)."""
        answer = await self.get(f"jobs/{job_id}", params={"wait": wait, "until": status})
        assert answer.code == 200, answer
        return answer.json


def parse_sse(text: str) -> list[tuple[str, Any]]:
    """Split a text/event-stream body into (event, data) pairs."""
    events = []
    for block in text.split("\n\n"):
        kind, data = None, []
        for line in block.splitlines():
            if line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        if kind:
            events.append((kind, json.loads("\n".join(data))))
    return events


#: every user of the multi-user tests, by the token that names them; U+0430 then 1 and
#: U+4301 once got the same datafile folder
TOKENS = {
    "alice-token": "alice",
    "bob-token": "bob",
    "carol-token": "carol",
    "root-token": "root",
    "t-cyrillic": "\u04301",
    "t-cjk": "\u4301",
    "t-accent": "jos\u00e9",
    "t-plain": "plain",
}


class UsersByToken(IdentityProvider):
    """Names users by their token (:data:`TOKENS`), as a multi-user deployment
    (JupyterHub) would."""

    def get_user(self, handler: Any) -> User | None:
        header = handler.request.headers.get("Authorization", "")
        name = TOKENS.get(header.removeprefix("token ").strip())
        return User(username=name) if name else None

    def is_token_authenticated(self, handler: Any) -> bool:
        return handler.request.headers.get("Authorization", "").startswith("token ")


async def open_gate(path: pathlib.Path) -> None:
    def release() -> None:
        with path.open("w") as f:
            f.write("go\n")

    await asyncio.to_thread(release)


async def first_event(api_fetch: Any, job_id: str, wanted: Any, timeout: float = 30) -> dict:
    """Read the job's live event stream until an event satisfies ``wanted``."""
    found: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
    buffer = b""

    def on_chunk(chunk: bytes) -> None:
        nonlocal buffer
        buffer += chunk
        for kind, data in parse_sse(buffer.decode("utf-8", "replace")):
            if not found.done() and wanted(kind, data):
                found.set_result({"event": kind, **data})

    stream = asyncio.ensure_future(
        api_fetch(f"jobs/{job_id}/events", streaming_callback=on_chunk, request_timeout=timeout)
    )
    try:
        return await asyncio.wait_for(asyncio.shield(found), timeout)
    finally:
        stream.add_done_callback(lambda f: f.exception())  # it ends with the job
