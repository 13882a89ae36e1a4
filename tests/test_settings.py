"""A setting the job server cannot honour stops the server at start-up, naming it."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
from helpers import TESTS, jobserver_config

from jupyter_jobserver.testing import ServerProcess


def start_with(tmp_path: pathlib.Path, **settings: Any) -> str:
    """Start a server with these JobServerApp settings; what it said as it stopped."""
    config = jobserver_config(tmp_path)
    config["JobServerApp"].update(settings)
    server = ServerProcess(tmp_path, config, python_path=[str(TESTS)])
    with pytest.raises(RuntimeError, match="the server did not start") as failed:
        server.start()
    assert server.proc is not None and server.proc.poll() not in (None, 0)  # it stopped
    return str(failed.value)


def test_another_kind_of_url_is_refused(tmp_path: pathlib.Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    said = start_with(tmp_path, db_url="postgresql://db.example/jobs")
    assert "JobServerApp.db_url is a postgresql:// URL" in said
    assert not list(tmp_path.rglob("postgresql:*"))


def test_a_missing_script_folder_is_refused(tmp_path: pathlib.Path) -> None:
    said = start_with(tmp_path, script_dirs=[str(tmp_path / "no-such-folder"), "relative"])
    assert f"ScriptRegistry.script_dirs: {tmp_path / 'no-such-folder'} does not exist" in said
    assert f"ScriptRegistry.script_dirs: {tmp_path / 'root' / 'relative'} does not exist" in said


def test_a_negative_limit_is_refused(tmp_path: pathlib.Path) -> None:
    said = start_with(tmp_path, workers=-1, max_timeout=-5.0)
    assert "LocalExecutor.workers must be 0 or more, not -1" in said
    assert "JobPolicy.max_timeout must be 0 (no limit) or more seconds" in said
