"""How a client outside a kernel started by a server finds a job server, with real
servers on one machine (they share the account's runtime folder)."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from helpers import TESTS, jobserver_config

from jupyter_jobserver.client import (
    ENV_TOKEN,
    ENV_URL,
    JobServerClient,
    ServerChosen,
    ServerNotFound,
)
from jupyter_jobserver.testing import ServerProcess


def start(home: pathlib.Path, runtime: pathlib.Path, token: str) -> ServerProcess:
    config = jobserver_config(home)
    config["ServerApp"]["jpserver_extensions"].update(
        {"jupyterlab": False, "jupyter_lsp": False, "notebook_shim": False}
    )
    config["JobServerApp"]["entry_point_scripts"] = False
    server = ServerProcess(home, config, token, [str(TESTS)], runtime_dir=runtime)
    return server.start()


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Two job servers running at once, each with its own root folder."""
    runtime = tmp_path_factory.mktemp("runtime")
    first = start(tmp_path_factory.mktemp("first"), runtime, "first-token")
    try:
        second = start(tmp_path_factory.mktemp("second"), runtime, "second-token")
    except BaseException:
        first.stop()
        raise
    yield runtime, first, second
    second.stop()
    first.stop()


@pytest.fixture
def outside(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> pathlib.Path:
    """Python started by hand, not by a server: no variables the server hands to kernels."""
    monkeypatch.delenv(ENV_URL, raising=False)
    monkeypatch.delenv(ENV_TOKEN, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_server_whose_root_holds_the_folder_is_chosen(
    machine: Any, outside: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, first, second = machine
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    for server in (first, second):
        folder = server.home / "root" / "analysis"
        folder.mkdir(exist_ok=True)
        monkeypatch.chdir(folder)
        with JobServerClient() as client:  # no warning: the folder says which
            assert client.connection.url == server.base + "/"
            assert client.connection.token == server.token


def test_several_servers_and_none_serves_the_folder_is_refused(
    machine: Any, outside: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, first, second = machine
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    with pytest.raises(ServerNotFound) as refused:
        JobServerClient()
    message = refused.value.message
    assert f"2 job servers are running and none serves the folder {outside.resolve()}" in message
    for server in (first, second):
        assert f"{server.base}/ (root folder {(server.home / 'root').resolve()})" in message
    assert "JobServerClient(url, token)" in message


def test_the_only_server_is_used_and_named(
    machine: Any, outside: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, first, _ = machine
    alone = outside / "runtime"
    alone.mkdir()
    for info in runtime.glob(f"jpserver-{first.proc.pid}*.json"):
        (alone / info.name).write_bytes(info.read_bytes())  # what a machine with one sees
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(alone))
    with pytest.warns(ServerChosen, match=rf"using the job server at {first.base}/ \(root"):
        client = JobServerClient()
    with client:
        assert client.connection.url == first.base + "/"
        assert "echo" in [s["name"] for s in client.scripts()]


def test_the_variables_a_server_hands_its_kernels_come_first(
    machine: Any, outside: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, first, second = machine
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    monkeypatch.chdir(first.home / "root")
    monkeypatch.setenv(ENV_URL, second.base)
    monkeypatch.setenv(ENV_TOKEN, second.token)
    with JobServerClient() as client:
        assert client.connection.url == second.base + "/"
