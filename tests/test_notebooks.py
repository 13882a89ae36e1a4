"""Every notebook in notebooks/ runs top to bottom against a fresh server."""

from __future__ import annotations

import pathlib
import shutil
from typing import Any

import nbformat
import pytest
from helpers import TESTS, jobserver_config
from nbclient import NotebookClient

from jupyter_jobserver.client import ENV_TOKEN, ENV_URL
from jupyter_jobserver.testing import ServerProcess

NOTEBOOKS = sorted((TESTS.parent / "notebooks").glob("*.ipynb"))


@pytest.fixture
def fresh_server(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A server run as `make lab` runs it, in a temporary copy of the checkout's data/ and
    notebooks/: whatever the notebooks do, they do to the copy."""
    config = jobserver_config(tmp_path)
    config["ServerApp"]["jpserver_extensions"].update(
        {"jupyterlab": False, "jupyter_lsp": False, "notebook_shim": False}
    )
    root = tmp_path / "root"
    shutil.copytree(TESTS.parent / "data", root / "data")
    shutil.copytree(TESTS.parent / "notebooks", root / "notebooks")
    server = ServerProcess(tmp_path, config).start()
    # the kernel finds the server from its runtime files, with no configuration
    monkeypatch.delenv(ENV_URL, raising=False)
    monkeypatch.delenv(ENV_TOKEN, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    yield server
    server.stop()


def contents(folder: pathlib.Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_there_are_notebooks() -> None:
    assert {p.name for p in NOTEBOOKS} >= {"getting-started.ipynb", "data-documents.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_notebook_runs_top_to_bottom(path: pathlib.Path, fresh_server: Any) -> None:
    root = fresh_server.home / "root"
    before = contents(root)
    notebook = nbformat.read(root / "notebooks" / path.name, as_version=4)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(root / "notebooks")}},
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o.get("text") for o in outputs if o.get("name") == "stderr"]  # no warning either
    status, listing = fresh_server.request("GET", "jobs?limit=1000")
    assert status == 200
    jobs = listing["jobs"]
    assert jobs, "the notebook ran no job"
    assert {j["status"] for j in jobs} == {"succeeded"}
    assert contents(root) == before  # no file left behind in data/ or anywhere else
    assert fresh_server.request("GET", "data")[1]["total"] == 0  # no document either
