"""The Python client: every REST operation as a method, sync and async.

In a kernel started by a Jupyter server that runs the job server, nothing needs configuring::

    from jupyter_jobserver.client import JobServerClient

    client = JobServerClient()                  # finds the server by itself
    job = client.run("summary", data=client.datafile_binding("timeseries.csv"))
    job.result                                  # a DataFrame

``AsyncJobServerClient`` has the same methods as coroutines. Errors the server reports are
raised as :mod:`jupyter_jobserver.errors` exceptions carrying the server's message.

How the server is found, in order: the ``url`` and ``token`` given; the
``JUPYTER_JOBSERVER_URL`` and ``JUPYTER_JOBSERVER_TOKEN`` the extension hands to kernels
it starts; else the runtime files of the Jupyter servers with the job server running on
this machine: the one whose root folder holds the current directory (the innermost, when
roots are nested); if none does, the only one running, with a :class:`ServerChosen`
warning that names it. When several run and none of them serves the current directory,
:class:`ServerNotFound` lists them rather than guess.

Every operation is written once, as a generator that yields the HTTP requests it needs and
receives their responses; the two clients only differ in how they send them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import inspect
import json
import os
import pathlib
import socket
import threading
import time
import warnings
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from typing import IO, Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import quote

import httpx

from . import errors
from .serialize import from_jsonable
from .vocabulary import API_PREFIX, ENV_TOKEN, ENV_URL, FINISHED  # for notebooks

API = f"{API_PREFIX}/"

P = ParamSpec("P")
R = TypeVar("R")


class ServerNotFound(errors.JobServerError):
    """No job server could be found or reached."""

    code = "no_server"


_ERRORS: dict[int, type[errors.JobServerError]] = {
    400: errors.InvalidRequest,
    403: errors.PermissionDenied,
    404: errors.NotFound,
    409: errors.Conflict,
    413: errors.TooLarge,
    429: errors.LimitReached,
}


# --- finding the server --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Connection:
    """Where a job server is: its Jupyter base URL (ending in ``/``) and a token."""

    url: str
    token: str = ""

    @property
    def api(self) -> str:
        return self.url + API


class ServerChosen(UserWarning):
    """The client chose the only job server running, though its root folder does not
    hold the current directory: the warning says which server that is."""


def find_server(url: str | None = None, token: str | None = None) -> Connection:
    """Locate a job server (see the module docstring); :class:`ServerNotFound` if none can
    be found, or if several run and none of them is clearly the one meant."""
    if url:
        return Connection(
            _slash(url), token if token is not None else os.environ.get(ENV_TOKEN, "")
        )
    if os.environ.get(ENV_URL):
        return Connection(_slash(os.environ[ENV_URL]), token or os.environ.get(ENV_TOKEN, ""))
    here = pathlib.Path.cwd().resolve()
    servers = [s for s in _running_servers() if _has_jobserver(s.connection)]
    holding = [s for s in servers if s.root == here or s.root in here.parents]
    if holding:
        deepest = max(len(s.root.parts) for s in holding)
        holding = [s for s in holding if len(s.root.parts) == deepest]
        if len(holding) == 1:
            return holding[0].connection
        raise ServerNotFound(
            f"{len(holding)} job servers serve the folder {here}, which cannot tell them "
            f"apart: {_listing(holding)}; {_CHOOSE}"
        )
    if len(servers) == 1:
        warnings.warn(
            f"using the job server at {servers[0].connection.url} (root folder "
            f"{servers[0].root}), the only one running; {here} is outside its root folder",
            ServerChosen,
            stacklevel=3,
        )
        return servers[0].connection
    if servers:
        raise ServerNotFound(
            f"{len(servers)} job servers are running and none serves the folder {here}: "
            f"{_listing(servers)}; {_CHOOSE}"
        )
    raise ServerNotFound(
        "no job server found: start JupyterLab with jupyter-jobserver installed, or pass "
        "url= and token= (or set JUPYTER_JOBSERVER_URL and JUPYTER_JOBSERVER_TOKEN)"
    )


_CHOOSE = (
    "say which with JobServerClient(url, token) (or JUPYTER_JOBSERVER_URL and "
    "JUPYTER_JOBSERVER_TOKEN), or start Python in a folder under its root folder"
)


@dataclasses.dataclass(frozen=True)
class _Running:
    """A Jupyter server that a runtime file says is running."""

    connection: Connection
    root: pathlib.Path


def _listing(servers: list[_Running]) -> str:
    return ", ".join(f"{s.connection.url} (root folder {s.root})" for s in servers)


def _running_servers() -> list[_Running]:
    try:
        from jupyter_server.serverapp import list_running_servers
    except ImportError:  # pragma: no cover - the client alone, without jupyter_server
        return []
    return [
        _Running(
            Connection(_slash(info["url"]), info.get("token") or ""),
            pathlib.Path(info.get("root_dir") or "/").resolve(),
        )
        for info in list_running_servers()
    ]


def _has_jobserver(conn: Connection) -> bool:
    try:
        response = httpx.get(conn.api + "scripts", headers=_auth(conn.token), timeout=5)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token {token}"} if token else {}


# --- what comes back -------------------------------------------------------------------------


class Job:
    """A job record with the result decoded (DataFrames and arrays rebuilt) and methods to
    follow it. ``job.record`` is the raw record; its fields are also attributes."""

    def __init__(self, record: dict[str, Any], client: JobServerClient | None = None) -> None:
        self.record = record
        self._client = client

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "record":
            raise AttributeError(name)
        try:
            return self.record[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def result(self) -> Any:
        """The job's return value, as the Python value it was."""
        return from_jsonable(self.record.get("result"))

    @property
    def finished(self) -> bool:
        return self.record["status"] in FINISHED

    def refresh(self) -> Job:
        self.record = self._need_client().get_job(self.record["id"]).record
        return self

    def wait(self, timeout: float = 3600) -> Job:
        """Block until the job has finished (or ``timeout`` seconds pass)."""
        client = self._need_client()
        deadline = time.monotonic() + timeout
        while not self.finished and time.monotonic() < deadline:
            self.record = client.get_job(self.id, wait=min(300, deadline - time.monotonic())).record
        return self

    def cancel(self) -> Job:
        self.record = self._need_client().cancel(self.id).record
        return self

    def rerun(self, **options: Any) -> Job:
        return self._need_client().rerun(self.id, **options)

    @property
    def stdout(self) -> str:
        return self._need_client().output(self.id, "stdout").text

    @property
    def files(self) -> list[dict[str, Any]]:
        """The files the job wrote: ``[{path, size, sha256}]``; those of its record once it
        has ended, what is there now while it runs."""
        if self.finished and "files" in (self.record.get("provenance") or {}):
            return list(self.record["provenance"]["files"])
        return self._need_client().job_files(self.id)

    def download(self, path: str, to: str | os.PathLike[str] | None = None) -> pathlib.Path:
        """Save one of the job's files (to the current folder by default), checked
        against its recorded sha256; the saved file's path."""
        return self._need_client().download(self.id, path, to)

    def file(self, path: str) -> bytes:
        """The bytes of one of the job's files."""
        return self._need_client().job_file(self.id, path)

    @property
    def stderr(self) -> str:
        return self._need_client().output(self.id, "stderr").text

    def _need_client(self) -> JobServerClient:
        if self._client is None:
            raise RuntimeError("this job was made without a client to talk to the server")
        return self._client

    def __repr__(self) -> str:
        name = self.record.get("script") or self.record.get("process")
        return f"<Job {str(self.record.get('id', '?'))[:8]} {name} {self.record.get('status')}>"

    def _repr_html_(self) -> str:
        from .display import job_html

        return job_html(self.record)


class Sweep:
    """A sweep: many jobs of one script, followed and collected as one. ``sweep.record``
    is the raw record (with ``counts`` and ``progress`` as last read); its fields are
    also attributes."""

    def __init__(self, record: dict[str, Any], client: JobServerClient) -> None:
        self.record = record
        self._client = client

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "record":
            raise AttributeError(name)
        try:
            return self.record[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def finished(self) -> bool:
        """Every job of it has ended."""
        return self.record["status"] in FINISHED

    @property
    def progress(self) -> dict[str, Any]:
        """``{"done", "total", "fraction"}`` as it is now (read from the server)."""
        return self.refresh().record["progress"]

    @property
    def counts(self) -> dict[str, int]:
        """Its jobs by status, as last read."""
        return self.record["counts"]

    def refresh(self) -> Sweep:
        self.record = self._client.get_sweep(self.record["id"]).record
        return self

    def follow(self) -> Iterator[dict[str, Any]]:
        """The sweep as it changes (a record per change), until every job has ended."""
        for event in self._client._stream(f"sweeps/{_segment(self.record['id'])}/events"):
            if event.get("sweep") is not None:
                self.record = event["sweep"]
                yield self.record
            if event["event"] == "end":
                return

    def wait(self, timeout: float | None = None) -> Sweep:
        """Block until every job of the sweep has ended (or ``timeout`` seconds pass)."""
        if timeout is None:
            for _ in self.follow():
                pass
            return self
        deadline = time.monotonic() + timeout
        follower = self._client.clone()
        done = threading.Event()

        def follow() -> None:
            with contextlib.suppress(errors.JobServerError):
                for record in Sweep(self.record, follower).follow():
                    self.record = record
            done.set()

        threading.Thread(target=follow, daemon=True).start()
        done.wait(max(0.0, deadline - time.monotonic()))
        follower.close()  # a stream still open ends
        return self

    def cancel(self) -> Sweep:
        """Cancel every job of the sweep not yet ended; none of them starts afterwards."""
        self.record = self._client.cancel_sweep(self.record["id"]).record
        return self

    def rerun(self, statuses: Iterable[str] = ("failed",)) -> Sweep:
        """Run its failed (or cancelled) jobs again, in their places."""
        self.record = self._client.rerun_sweep(self.record["id"], statuses=statuses).record
        return self

    def jobs(self, **filters: Any) -> list[Job]:
        return self._client.sweep_jobs(self.record["id"], **filters)

    def results(self) -> Any:
        """The sweep's table as a pandas DataFrame, a row per job, indexed by its place:
        parameters, status, time, result (a flat dict's values as columns), error."""
        import pandas

        table = self._client.sweep_results(self.record["id"])
        return pandas.DataFrame(table["rows"], columns=table["columns"]).set_index("index")

    def delete(self) -> None:
        self._client.delete_sweep(self.record["id"])

    def __repr__(self) -> str:
        done = self.record.get("progress", {}).get("done")
        return (
            f"<Sweep {str(self.record.get('id', '?'))[:8]} {self.record.get('script')} "
            f"{self.record.get('status')} {done}/{self.record.get('size')}>"
        )


@dataclasses.dataclass
class Output:
    """A piece of a job's stdout or stderr."""

    text: str
    next_offset: int
    complete: bool


# --- requests, written once -----------------------------------------------------------------


@dataclasses.dataclass
class _Request:
    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    content: Any = None
    headers: dict[str, str] | None = None


Op = Generator[_Request, httpx.Response, R]


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code < 400:
        return response
    code, reason = response.status_code, response.reason_phrase
    try:
        message = response.json().get("message") or reason
    except ValueError:  # not an answer of the job server: say what that means
        url = response.request.url.copy_with(query=None)
        if code == 404:
            raise ServerNotFound(
                f"no job server at {url} ({code} {reason}): check the URL, and that the "
                "jupyter_jobserver extension is enabled on that server"
            ) from None
        message = f"{url} answered {code} {reason}"
    if code == 403 and message == reason:  # Jupyter's own refusal, before the job server
        message = (
            f"the server refused the credentials ({code} {reason}): check the token "
            f"(or set {ENV_TOKEN})"
        )
    raise _ERRORS.get(code, errors.JobServerError)(message)


def _lost(connection: Connection, exc: httpx.HTTPError) -> ServerNotFound:
    """The server could not be reached, or went away in the middle of an answer."""
    lost = isinstance(exc, (httpx.RemoteProtocolError, httpx.ReadError))
    what = "lost the job server" if lost else "cannot reach the job server"
    return ServerNotFound(f"{what} at {connection.url}: {exc}")


def _params(**values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None or value == [] or value == ():
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(map(str, value))
        elif isinstance(value, bool):
            value = "true" if value else "false"
        out[key] = value
    return out


def _keyed(key: str | None) -> dict[str, str] | None:
    return {"Idempotency-Key": key} if key is not None else None


def _segment(text: str) -> str:
    return quote(text, safe="")


def _file_path(job_id: str, path: str) -> str:
    return f"jobs/{_segment(job_id)}/files/" + "/".join(_segment(p) for p in path.split("/"))


def _job(client: Any, record: dict[str, Any]) -> Job:
    return Job(record, client if isinstance(client, JobServerClient) else client.blocking)


def _sweep(client: Any, record: dict[str, Any]) -> Sweep:
    return Sweep(record, client if isinstance(client, JobServerClient) else client.blocking)


def _binding(data: Any) -> dict[str, Any] | None:
    """``data=`` of :meth:`map`: a binding as it is, a datafile by its name, else inline."""
    if data is None or (isinstance(data, dict) and "type" in data):
        return data
    if isinstance(data, str):
        return _Bindings.datafile_binding(data)
    return _Bindings.inline_binding(data)


class _Api:
    """The REST API, each operation a generator of requests (see the module docstring).
    Never instantiated: ``self`` is the client the operation runs for."""

    # scripts
    def scripts(self) -> Op[list[dict[str, Any]]]:
        """Every script this server offers, with its parameter schema."""
        response = yield _Request("GET", "scripts")
        return _check(response).json()["scripts"]

    def script(self, name: str) -> Op[dict[str, Any]]:
        """One script: its description, version, parameter schema and accepted data."""
        response = yield _Request("GET", f"scripts/{_segment(name)}")
        return _check(response).json()

    # jobs
    def create_job(
        self,
        script: str | None = None,
        *,
        args: Iterable[Any] = (),
        kwargs: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        run: bool = False,
        public: bool = False,
        timeout: float | None = None,
        tags: Iterable[str] = (),
        code: str | None = None,
        wait: float | None = None,
        idempotency_key: str | None = None,
    ) -> Op[Job]:
        """Create a job; with ``run``, queue it; with ``wait`` too, answer once it ended.
        With ``idempotency_key``, sending the same again returns the first job."""
        body: dict[str, Any] = {
            "args": list(args),
            "kwargs": dict(kwargs or {}),
            "data": data,
            "run": run,
            "public": public,
            "tags": list(tags),
        }
        if code is not None:
            body.update(process="eval", code=code)
        else:
            body["script"] = script
        if timeout is not None:
            body["timeout"] = timeout
        response = yield _Request(
            "POST", "jobs", params=_params(wait=wait), json=body, headers=_keyed(idempotency_key)
        )
        return _job(self, _check(response).json())

    def run(self, script: str, *args: Any, wait: float | None = 3600, **options: Any) -> Op[Job]:
        """Create and run a job, and (unless ``wait=None``) wait for it to end. Positional
        arguments are the script's arguments; ``kwargs=``, ``data=`` and the other options
        of :meth:`create_job` may be given by name."""
        first_wait = min(wait, 300) if wait else None
        job = yield from _Api.create_job(
            self, script, args=args, run=True, wait=first_wait, **options
        )
        deadline = time.monotonic() + (wait or 0)
        while wait and job.record["status"] not in FINISHED and time.monotonic() < deadline:
            remaining = min(300, deadline - time.monotonic())
            job = yield from _Api.get_job(self, job.record["id"], wait=remaining)
        return job

    # sweeps
    def create_sweep(
        self,
        script: str,
        *,
        grid: Mapping[str, Iterable[Any]] | None = None,
        sets: Iterable[dict[str, Any]] | None = None,
        kwargs: dict[str, Any] | None = None,
        datafiles: Iterable[str] | None = None,
        data: dict[str, Any] | None = None,
        run: bool = True,
        public: bool = False,
        timeout: float | None = None,
        tags: Iterable[str] = (),
        idempotency_key: str | None = None,
    ) -> Op[Sweep]:
        """Create a sweep: a job for every combination of ``datafiles`` (or ``data``),
        ``sets`` and the points of ``grid``; with ``run`` (the default), queue them all."""
        body: dict[str, Any] = {
            "script": script,
            "grid": {name: list(values) for name, values in (grid or {}).items()},
            "kwargs": dict(kwargs or {}),
            "run": run,
            "public": public,
            "tags": list(tags),
        }
        if sets is not None:
            body["sets"] = [dict(values) for values in sets]
        if datafiles is not None:
            body["datafiles"] = list(datafiles)
        if data is not None:
            body["data"] = data
        if timeout is not None:
            body["timeout"] = timeout
        response = yield _Request("POST", "sweeps", json=body, headers=_keyed(idempotency_key))
        return _sweep(self, _check(response).json())

    def sweep(
        self,
        script: str,
        grid: Mapping[str, Iterable[Any]] | None = None,
        *,
        datafiles: Iterable[str] | None = None,
        **options: Any,
    ) -> Op[Sweep]:
        """Run ``script`` over the product of ``grid``'s value lists (and on each of
        ``datafiles``); ``sweep.wait()``, then ``sweep.results()``."""
        return (
            yield from _Api.create_sweep(self, script, grid=grid, datafiles=datafiles, **options)
        )

    def map(
        self,
        script: str,
        params_list: Iterable[dict[str, Any]],
        *,
        data: Any = None,
        **options: Any,
    ) -> Op[Sweep]:
        """Run ``script`` once per parameter set of ``params_list``, each on ``data`` (a
        binding, a datafile's name, or a value sent inline)."""
        return (
            yield from _Api.create_sweep(
                self, script, sets=list(params_list), data=_binding(data), **options
            )
        )

    def get_sweep(self, sweep_id: str) -> Op[Sweep]:
        """A sweep by id, with its counts by status and progress."""
        response = yield _Request("GET", f"sweeps/{_segment(sweep_id)}")
        return _sweep(self, _check(response).json())

    def sweeps(self, *, limit: int = 20, offset: int = 0) -> Op[list[Sweep]]:
        """Your sweeps (and public ones), newest first."""
        response = yield _Request("GET", "sweeps", params=_params(limit=limit, offset=offset))
        return [_sweep(self, record) for record in _check(response).json()["sweeps"]]

    def sweep_jobs(
        self,
        sweep_id: str,
        *,
        status: str | Iterable[str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Op[list[Job]]:
        """The jobs of a sweep (every attempt), filtered like :meth:`jobs`."""
        response = yield _Request(
            "GET",
            f"sweeps/{_segment(sweep_id)}/jobs",
            params=_params(status=_listed(status), limit=limit, offset=offset),
        )
        return [_job(self, record) for record in _check(response).json()["jobs"]]

    def sweep_results(self, sweep_id: str) -> Op[dict[str, Any]]:
        """The sweep's table: ``{"columns": [...], "rows": [[...], ...]}``."""
        response = yield _Request("GET", f"sweeps/{_segment(sweep_id)}/results")
        return _check(response).json()

    def cancel_sweep(self, sweep_id: str) -> Op[Sweep]:
        """Cancel every job of the sweep not yet ended."""
        response = yield _Request("POST", f"sweeps/{_segment(sweep_id)}/cancel")
        return _sweep(self, _check(response).json())

    def rerun_sweep(self, sweep_id: str, *, statuses: Iterable[str] = ("failed",)) -> Op[Sweep]:
        """Run the sweep's failed (or cancelled) jobs again, in their places."""
        response = yield _Request(
            "POST", f"sweeps/{_segment(sweep_id)}/rerun", json={"statuses": list(statuses)}
        )
        return _sweep(self, _check(response).json())

    def delete_sweep(self, sweep_id: str) -> Op[None]:
        """Delete the sweep and all its jobs."""
        response = yield _Request("DELETE", f"sweeps/{_segment(sweep_id)}")
        _check(response)

    def get_job(
        self, job_id: str, *, wait: float | None = None, until: str | None = None
    ) -> Op[Job]:
        """A job by id; with ``wait``, once it has finished (or reached status ``until``,
        e.g. ``running``) or ``wait`` seconds have passed."""
        response = yield _Request(
            "GET", f"jobs/{_segment(job_id)}", params=_params(wait=wait, until=until)
        )
        return _job(self, _check(response).json())

    def jobs(
        self,
        *,
        status: str | Iterable[str] | None = None,
        script: str | Iterable[str] | None = None,
        owner: str | Iterable[str] | None = None,
        tag: str | Iterable[str] | None = None,
        mine: bool = False,
        sort: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Op[tuple[list[Job], int]]:
        """Jobs you may see (``mine``: only your own), and how many match in all."""
        params = _params(
            mine=mine or None,
            status=_listed(status),
            script=_listed(script),
            owner=_listed(owner),
            tag=_listed(tag),
            sort=sort,
            limit=limit,
            offset=offset,
        )
        response = yield _Request("GET", "jobs", params=params)
        body = _check(response).json()
        return [_job(self, j) for j in body["jobs"]], body["total"]

    def query(
        self, filter: dict[str, Any], *, sort: Any = None, limit: int = 100, offset: int = 0
    ) -> Op[tuple[list[Job], int]]:
        """Jobs matching a MongoDB-style filter."""
        body = {"filter": filter, "sort": sort, "limit": limit, "offset": offset}
        response = yield _Request("POST", "jobs/query", json=body)
        answer = _check(response).json()
        return [_job(self, j) for j in answer["jobs"]], answer["total"]

    def edit_job(self, job_id: str, **changes: Any) -> Op[Job]:
        """Change a job: ``args``, ``kwargs``, ``data`` and ``timeout`` while it is
        ``created`` (:class:`~jupyter_jobserver.errors.Conflict` after), ``public`` and
        ``tags`` at any time."""
        response = yield _Request("PATCH", f"jobs/{_segment(job_id)}", json=changes)
        return _job(self, _check(response).json())

    def run_job(self, job_id: str) -> Op[Job]:
        """Queue a job that was created without ``run``."""
        response = yield _Request("POST", f"jobs/{_segment(job_id)}/run")
        return _job(self, _check(response).json())

    def cancel(self, job_id: str) -> Op[Job]:
        """Cancel a job that has not finished; a running one is killed with its children."""
        response = yield _Request("POST", f"jobs/{_segment(job_id)}/cancel")
        return _job(self, _check(response).json())

    def rerun(self, job_id: str, *, run: bool = True, current_data: bool = False) -> Op[Job]:
        """A new job with the same script, parameters and data. A datafile or document
        that changed since is refused unless ``current_data``."""
        body = {"run": run, "current_data": current_data}
        response = yield _Request("POST", f"jobs/{_segment(job_id)}/rerun", json=body)
        return _job(self, _check(response).json())

    def delete_job(self, job_id: str) -> Op[None]:
        """Delete a job and its output (a running job is cancelled first)."""
        _check((yield _Request("DELETE", f"jobs/{_segment(job_id)}")))

    def delete_jobs(self, filter: dict[str, Any] | None = None) -> Op[int]:
        """Delete your jobs that match a MongoDB-style filter (all of them without one);
        answers how many were deleted."""
        response = yield _Request("DELETE", "jobs", json={"filter": filter or {}})
        return _check(response).json()["deleted"]

    def output(
        self, job_id: str, stream: str = "stdout", *, offset: int = 0, limit: int | None = None
    ) -> Op[Output]:
        """A job's captured output from byte ``offset`` (all of it, or ``limit`` bytes)."""
        response = yield _Request(
            "GET",
            f"jobs/{_segment(job_id)}/output/{stream}",
            params=_params(offset=offset, limit=limit),
        )
        _check(response)
        return Output(
            text=response.content.decode("utf-8", "replace"),
            next_offset=int(response.headers.get("X-Jobserver-Next-Offset", offset)),
            complete=response.headers.get("X-Jobserver-Complete") == "true",
        )

    def job_files(self, job_id: str) -> Op[list[dict[str, Any]]]:
        """The files a job wrote: ``[{path, size, sha256}]`` (``sha256`` once it ended)."""
        response = yield _Request("GET", f"jobs/{_segment(job_id)}/files")
        return _check(response).json()["files"]

    def job_file(self, job_id: str, path: str) -> Op[bytes]:
        """One file of a job, whole (``download`` streams a large one to disk)."""
        response = yield _Request("GET", _file_path(job_id, path))
        return _check(response).content

    # datafiles
    def datafiles(self) -> Op[list[dict[str, Any]]]:
        """Every datafile: name, size, modified, extension, sha256."""
        response = yield _Request("GET", "datafiles")
        return _check(response).json()["datafiles"]

    def datafile(self, name: str) -> Op[dict[str, Any]]:
        """One datafile's metadata."""
        response = yield _Request("GET", f"datafiles/{_segment(name)}")
        return _check(response).json()

    def datafile_content(self, name: str, format: str = "csv") -> Op[str]:
        """A tabular datafile as csv, json, html or txt."""
        response = yield _Request("GET", f"datafiles/{_segment(name)}", params={"format": format})
        return _check(response).text

    def upload(
        self,
        source: str | os.PathLike[str] | bytes | IO[bytes],
        name: str | None = None,
        *,
        overwrite: bool = False,
    ) -> Op[dict[str, Any]]:
        """Upload a file (a path, bytes or a binary file object) as a datafile; a path is
        streamed, never read into memory whole."""
        opened = None
        content: Any
        if isinstance(source, (str, os.PathLike)):
            path = pathlib.Path(source)
            name = name or path.name
            opened = content = path.open("rb")
        elif isinstance(source, bytes):
            content = source
        else:
            content = source
        if not name:
            raise ValueError("name the datafile: upload(source, name=...)")
        try:
            response = yield _Request(
                "PUT",
                f"datafiles/{_segment(name)}",
                params=_params(overwrite=overwrite or None),
                content=content,
                headers={"Content-Type": "application/octet-stream"},
            )
        finally:
            if opened is not None:
                opened.close()
        return _check(response).json()

    def delete_datafile(self, name: str) -> Op[None]:
        """Delete a datafile."""
        _check((yield _Request("DELETE", f"datafiles/{_segment(name)}")))

    # stored data documents
    def create_data(
        self,
        name: str,
        data: Any,
        *,
        datatype: str = "json",
        description: str | None = None,
        public: bool = False,
    ) -> Op[dict[str, Any]]:
        """Store a data document; a DataFrame is sent as a table. ``datatype`` says how a
        job receives it (``json``, ``dataframe``, ``timeseries``, ``ndarray``, ...)."""
        body = {"name": name, "data": _jsonable_data(data), "datatype": datatype, "public": public}
        if description is not None:
            body["description"] = description
        response = yield _Request("POST", "data", json=body)
        return _check(response).json()

    def data_documents(
        self,
        *,
        name: str | Iterable[str] | None = None,
        datatype: str | Iterable[str] | None = None,
        owner: str | Iterable[str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Op[tuple[list[dict[str, Any]], int]]:
        """Stored data documents (without their data), and how many match in all."""
        params = _params(
            name=_listed(name),
            datatype=_listed(datatype),
            owner=_listed(owner),
            limit=limit,
            offset=offset,
        )
        body = _check((yield _Request("GET", "data", params=params))).json()
        return body["data"], body["total"]

    def get_data(self, data_id: str) -> Op[dict[str, Any]]:
        """A stored data document, with its data."""
        response = yield _Request("GET", f"data/{_segment(data_id)}")
        return _check(response).json()

    def edit_data(
        self, data_id: str, *, revision: int | None = None, **changes: Any
    ) -> Op[dict[str, Any]]:
        """Change a stored document (``name``, ``data``, ``description``, ``public``);
        with ``revision``, only if it is still at that revision."""
        if "data" in changes:
            changes["data"] = _jsonable_data(changes["data"])
        if revision is not None:
            changes["revision"] = revision
        response = yield _Request("PATCH", f"data/{_segment(data_id)}", json=changes)
        return _check(response).json()

    def delete_data(self, data_id: str) -> Op[None]:
        """Delete a stored data document."""
        _check((yield _Request("DELETE", f"data/{_segment(data_id)}")))


class _Bindings:
    """Data bindings for jobs, for convenience."""

    @staticmethod
    def datafile_binding(name: str) -> dict[str, Any]:
        """Bind a datafile: ``create_job(..., data=client.datafile_binding("a.csv"))``."""
        return {"type": "datafile", "name": name}

    @staticmethod
    def document_binding(data_id: str) -> dict[str, Any]:
        """Bind a stored data document by its id."""
        return {"type": "mongodb", "id": data_id}

    @staticmethod
    def inline_binding(data: Any, datatype: str | None = None) -> dict[str, Any]:
        """Inline data; a pandas DataFrame travels as a ``dataframe`` (split form)."""
        if datatype is None:
            datatype = "dataframe" if _is_frame(data) else "json"
        return {"type": "raw_data", "data": _jsonable_data(data), "datatype": datatype}


def _listed(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _is_frame(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "to_dict")


def _jsonable_data(value: Any) -> Any:
    if _is_frame(value):
        from .serialize import to_jsonable

        split = to_jsonable(value)
        return {k: split[k] for k in ("columns", "data", "index")}
    from .serialize import to_jsonable

    return to_jsonable(value)


# --- the two clients -------------------------------------------------------------------------


def _signature(op: Callable[..., Any]) -> inspect.Signature:
    """The operation's signature, answering what the operation returns (``Op[Job]`` is a
    ``Job`` once the requests are sent)."""
    signature = inspect.signature(op)
    returns = signature.return_annotation
    if isinstance(returns, str) and returns.startswith("Op[") and returns.endswith("]"):
        returns = returns[3:-1]
    return signature.replace(return_annotation=returns)


def _sync(op: Callable[Concatenate[Any, P], Op[R]]) -> Callable[Concatenate[Any, P], R]:
    """The operation as a method of the blocking client: it sends the requests and
    returns the result. Its name, signature and docstring are the operation's, so help in
    Jupyter (``client.run?``) shows them."""

    @functools.wraps(op)
    def method(self: Any, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._drive(op(self, *args, **kwargs))

    method.__signature__ = _signature(op)  # type: ignore[attr-defined]
    return method


def _async(
    op: Callable[Concatenate[Any, P], Op[R]],
) -> Callable[Concatenate[Any, P], Awaitable[R]]:
    """The operation as a coroutine method of the asyncio client (see :func:`_sync`)."""

    @functools.wraps(op)
    async def method(self: Any, *args: P.args, **kwargs: P.kwargs) -> R:
        return await self._drive(op(self, *args, **kwargs))

    method.__signature__ = _signature(op)  # type: ignore[attr-defined]
    return method


class JobServerClient(_Bindings):
    """A blocking client (see the module docstring)."""

    scripts = _sync(_Api.scripts)
    script = _sync(_Api.script)
    create_job = _sync(_Api.create_job)
    run = _sync(_Api.run)
    get_job = _sync(_Api.get_job)
    jobs = _sync(_Api.jobs)
    query = _sync(_Api.query)
    edit_job = _sync(_Api.edit_job)
    run_job = _sync(_Api.run_job)
    cancel = _sync(_Api.cancel)
    rerun = _sync(_Api.rerun)
    delete_job = _sync(_Api.delete_job)
    delete_jobs = _sync(_Api.delete_jobs)
    output = _sync(_Api.output)
    job_files = _sync(_Api.job_files)
    job_file = _sync(_Api.job_file)
    datafiles = _sync(_Api.datafiles)
    datafile = _sync(_Api.datafile)
    datafile_content = _sync(_Api.datafile_content)
    upload = _sync(_Api.upload)
    delete_datafile = _sync(_Api.delete_datafile)
    create_data = _sync(_Api.create_data)
    data_documents = _sync(_Api.data_documents)
    get_data = _sync(_Api.get_data)
    edit_data = _sync(_Api.edit_data)
    delete_data = _sync(_Api.delete_data)
    create_sweep = _sync(_Api.create_sweep)
    sweep = _sync(_Api.sweep)
    map = _sync(_Api.map)
    get_sweep = _sync(_Api.get_sweep)
    sweeps = _sync(_Api.sweeps)
    sweep_jobs = _sync(_Api.sweep_jobs)
    sweep_results = _sync(_Api.sweep_results)
    cancel_sweep = _sync(_Api.cancel_sweep)
    rerun_sweep = _sync(_Api.rerun_sweep)
    delete_sweep = _sync(_Api.delete_sweep)

    def __init__(
        self, url: str | None = None, token: str | None = None, *, timeout: float = 330.0
    ) -> None:
        self.connection = find_server(url, token)
        self._http = httpx.Client(
            base_url=self.connection.api,
            headers=_auth(self.connection.token),
            timeout=httpx.Timeout(timeout, connect=10),
        )
        self._closed = False
        self._streams: set[socket.socket] = set()

    def clone(self) -> JobServerClient:
        """A new client to the same server (for a thread of its own)."""
        return JobServerClient(self.connection.url, self.connection.token)

    def _drive(self, op: Op[R]) -> R:
        try:
            request = next(op)
            while True:
                response = self._send(request)
                request = op.send(response)
        except StopIteration as done:
            return done.value

    def _send(self, request: _Request) -> httpx.Response:
        try:
            return self._http.request(
                request.method,
                request.path,
                params=request.params,
                json=request.json,
                content=request.content,
                headers=request.headers,
            )
        except httpx.HTTPError as exc:
            raise _lost(self.connection, exc) from exc

    def file_url(self, job_id: str, path: str) -> str:
        """A link that downloads one file of a job (in a browser signed in to the server)."""
        return f"{self.connection.api}{_file_path(job_id, path)}?download=1"

    def files_html(self, job: Job) -> str:
        """A job's files as HTML: images inline, every file a download link."""
        from .display import files_html

        return files_html(
            job.files,
            lambda path: self.file_url(job.id, path),
            lambda path: self.job_file(job.id, path),
        )

    def download(
        self, job_id: str, path: str, to: str | os.PathLike[str] | None = None
    ) -> pathlib.Path:
        """Save one file of a job, streamed to disk, and check it against the sha256 the
        job recorded. ``to`` is a folder (the file keeps its name) or a file path; the
        current folder by default. Nothing is left behind when the download fails."""
        target = pathlib.Path(to) if to is not None else pathlib.Path.cwd()
        if target.is_dir():
            target = target / path.rsplit("/", 1)[-1]
        partial = target.with_name(f".{target.name}.part")
        digest = hashlib.sha256()
        try:
            with self._http.stream("GET", _file_path(job_id, path)) as response:
                if response.status_code >= 400:
                    response.read()
                    _check(response)
                expected = response.headers.get("X-Jobserver-Sha256")
                with partial.open("wb") as f:
                    for block in response.iter_bytes(1 << 20):
                        digest.update(block)
                        f.write(block)
            if expected and digest.hexdigest() != expected:
                raise errors.JobServerError(
                    f"{path} arrived with sha256 {digest.hexdigest()}, not the {expected} "
                    "the job recorded; try again"
                )
            partial.replace(target)
        except httpx.HTTPError as exc:
            raise _lost(self.connection, exc) from exc
        finally:
            partial.unlink(missing_ok=True)
        return target

    def events(self, job_id: str) -> Iterator[dict[str, Any]]:
        """The job's events as they happen (``status``, ``progress``, ``output``, ``end``);
        the iterator ends with the job."""
        return self._stream(f"jobs/{_segment(job_id)}/events")

    def watch(self) -> Iterator[dict[str, Any]]:
        """Status changes of every job you may see, as they happen (never ends). The first
        event, ``open``, says the stream is connected: no change after it is missed."""
        return self._stream("jobs/events")

    def _stream(self, path: str) -> Iterator[dict[str, Any]]:
        try:
            with self._http.stream("GET", path, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    _check(response)
                stream = response.extensions.get("network_stream")
                sock = stream.get_extra_info("socket") if stream is not None else None
                if sock is not None:
                    self._streams.add(sock)
                try:
                    yield from _sse(response.iter_lines())
                finally:
                    self._streams.discard(sock)
        except httpx.HTTPError as exc:
            if self._closed:
                return  # closed on purpose, from another thread: the stream just ends
            raise _lost(self.connection, exc) from exc

    def close(self) -> None:
        """Close the connections; an event stream that another thread is reading ends."""
        self._closed = True
        for sock in list(self._streams):
            # Closing a socket does not wake a thread blocked reading it; shutting it down does.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._http.close()

    def __enter__(self) -> JobServerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncJobServerClient(_Bindings):
    """The same operations as coroutines."""

    scripts = _async(_Api.scripts)
    script = _async(_Api.script)
    create_job = _async(_Api.create_job)
    run = _async(_Api.run)
    get_job = _async(_Api.get_job)
    jobs = _async(_Api.jobs)
    query = _async(_Api.query)
    edit_job = _async(_Api.edit_job)
    run_job = _async(_Api.run_job)
    cancel = _async(_Api.cancel)
    rerun = _async(_Api.rerun)
    delete_job = _async(_Api.delete_job)
    delete_jobs = _async(_Api.delete_jobs)
    output = _async(_Api.output)
    job_files = _async(_Api.job_files)
    job_file = _async(_Api.job_file)
    datafiles = _async(_Api.datafiles)
    datafile = _async(_Api.datafile)
    datafile_content = _async(_Api.datafile_content)
    upload = _async(_Api.upload)
    delete_datafile = _async(_Api.delete_datafile)
    create_data = _async(_Api.create_data)
    data_documents = _async(_Api.data_documents)
    get_data = _async(_Api.get_data)
    edit_data = _async(_Api.edit_data)
    delete_data = _async(_Api.delete_data)
    create_sweep = _async(_Api.create_sweep)
    sweep = _async(_Api.sweep)
    map = _async(_Api.map)
    get_sweep = _async(_Api.get_sweep)
    sweeps = _async(_Api.sweeps)
    sweep_jobs = _async(_Api.sweep_jobs)
    sweep_results = _async(_Api.sweep_results)
    cancel_sweep = _async(_Api.cancel_sweep)
    rerun_sweep = _async(_Api.rerun_sweep)
    delete_sweep = _async(_Api.delete_sweep)

    def __init__(
        self, url: str | None = None, token: str | None = None, *, timeout: float = 330.0
    ) -> None:
        self.connection = find_server(url, token)
        self._http = httpx.AsyncClient(
            base_url=self.connection.api,
            headers=_auth(self.connection.token),
            timeout=httpx.Timeout(timeout, connect=10),
        )
        self._blocking: JobServerClient | None = None

    @property
    def blocking(self) -> JobServerClient:
        """A blocking client to the same server: what the ``Job`` objects this client
        returns use for their own methods (``refresh``, ``wait``, ``stdout``, ...)."""
        if self._blocking is None:
            self._blocking = JobServerClient(self.connection.url, self.connection.token)
        return self._blocking

    async def _drive(self, op: Op[R]) -> R:
        try:
            request = next(op)
            while True:
                response = await self._send(request)
                request = op.send(response)
        except StopIteration as done:
            return done.value

    async def _send(self, request: _Request) -> httpx.Response:
        content = request.content
        if hasattr(content, "read"):  # a file: stream it without blocking the loop
            content = _chunks(content)
        try:
            return await self._http.request(
                request.method,
                request.path,
                params=request.params,
                json=request.json,
                content=content,
                headers=request.headers,
            )
        except httpx.HTTPError as exc:
            raise _lost(self.connection, exc) from exc

    async def events(self, job_id: str) -> AsyncIterator[dict[str, Any]]:
        """The job's events as they happen; the iterator ends with the job."""
        async for event in self._stream(f"jobs/{_segment(job_id)}/events"):
            yield event

    async def watch(self) -> AsyncIterator[dict[str, Any]]:
        """Status changes of every job you may see (first ``open``); never ends."""
        async for event in self._stream("jobs/events"):
            yield event

    async def _stream(self, path: str) -> AsyncIterator[dict[str, Any]]:
        try:
            async with self._http.stream("GET", path, timeout=None) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _check(response)
                lines: list[str] = []
                async for line in response.aiter_lines():
                    lines.append(line)
                    if line == "":
                        for event in _sse(lines):
                            yield event
                        lines = []
        except httpx.HTTPError as exc:
            raise _lost(self.connection, exc) from exc

    async def aclose(self) -> None:
        """Close the connections (and the blocking client ``Job`` objects use)."""
        await self._http.aclose()
        if self._blocking is not None:
            self._blocking.close()

    async def __aenter__(self) -> AsyncJobServerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _chunks(file: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(file.read, 1 << 20):
        yield chunk


def _sse(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Parse server-sent events: ``{"event": kind, **data}``."""
    kind: str | None = None
    data: list[str] = []
    for line in lines:
        if line == "":
            if kind is not None:
                yield {"event": kind, **json.loads("\n".join(data) or "{}")}
            kind, data = None, []
        elif line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
    if kind is not None:
        yield {"event": kind, **json.loads("\n".join(data) or "{}")}
