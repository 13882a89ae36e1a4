"""Fixtures: a real Jupyter server with the job server on a temporary store."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import mongo
import pytest
from helpers import TESTS, Api, jobserver_config

pytest_plugins = ("pytest_jupyter.jupyter_server",)

#: the stores a module's server tests run against when it sets ``EVERY_STORE = True``
STORE_KINDS = ("sqlite", "mongodb")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the server tests of a module that says ``EVERY_STORE = True`` once per store."""
    if "store_kind" in metafunc.fixturenames and getattr(metafunc.module, "EVERY_STORE", False):
        metafunc.parametrize("store_kind", STORE_KINDS, indirect=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    mongo.stop()


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which store the test server uses: SQLite unless the module runs on every store."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def jp_server_config(
    tmp_path: pathlib.Path, request: pytest.FixtureRequest, store_kind: str
) -> Any:
    """The test server's configuration; a test adds to it with
    ``@pytest.mark.parametrize("jp_server_config", [{section: {...}}], indirect=True)``."""
    config = jobserver_config(tmp_path, **getattr(request, "param", {}))
    if store_kind == "mongodb":
        database = mongo.new_database()
        config["JobServerApp"]["db_url"] = mongo.uri()
        config.setdefault("MongoStore", {})["database"] = database
        yield config
        mongo.drop(database)
    else:
        yield config


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real Dask ``LocalCluster`` for the whole session: two worker processes of one
    thread each, offering the machine's two cores each as the ``cores`` resource, started
    in a folder of their own (so nothing works by sharing the server's working folder)."""
    import os

    from distributed import LocalCluster

    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("dask-workers"))
    try:
        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            resources={"cores": 2},
            dashboard_address=":0",  # never the default port: other clusters may hold it
            env={"PYTHONPATH": str(TESTS)},
        )
    finally:
        os.chdir(here)
    yield cluster
    cluster.close()


@pytest.fixture
def jobserver(jp_serverapp: Any, jp_asyncio_loop: Any) -> Any:
    """The started job server extension app (pytest-jupyter does not start extensions)."""
    manager = jp_serverapp.extension_manager
    jp_asyncio_loop.run_until_complete(manager.start_extension("jupyter_jobserver"))
    return manager.extension_points["jobserver"].app


@pytest.fixture
def api_fetch(
    http_server_client: Any, jp_auth_header: dict, jp_base_url: str, jobserver: Any
) -> Any:
    """Fetch a path under the job server's API exactly as given (already URL-quoted)."""

    def fetch(path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        kwargs.setdefault("request_timeout", 120)
        return http_server_client.fetch(
            f"{jp_base_url}jobserver/api/{path}",
            headers={**jp_auth_header, **(headers or {})},
            **kwargs,
        )

    return fetch


@pytest.fixture
def api(api_fetch: Any) -> Api:
    return Api(api_fetch)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A job server in a child process, shared by a module's tests (for the notebook side:
    a client blocking in the test's thread needs a server that is not in it)."""
    import shutil

    from jupyter_jobserver.testing import ServerProcess

    home = tmp_path_factory.mktemp("live")
    config = jobserver_config(home)
    config["ServerApp"]["jpserver_extensions"].update(
        {"jupyterlab": False, "jupyter_lsp": False, "notebook_shim": False}
    )
    data = home / "root" / "data"
    data.mkdir(parents=True)
    for source in (TESTS.parent / "data").iterdir():
        shutil.copy(source, data / source.name)
    server = ServerProcess(home, config, python_path=[str(TESTS)]).start()
    yield server
    server.stop()


@pytest.fixture
def client(live_server: Any) -> Any:
    from jupyter_jobserver.client import JobServerClient

    with JobServerClient(live_server.base, live_server.token) as client:
        yield client


@pytest.fixture
def gate(tmp_path: pathlib.Path) -> pathlib.Path:
    """A FIFO a job waits at until the test writes a line to it."""
    path = tmp_path / "gate"
    os.mkfifo(path)
    return path
