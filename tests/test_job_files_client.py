"""Job files from the notebook side: ``job.files``, downloads checked against their
checksums, and images shown inline by the magic and by ``JobView``; against a real
server in a child process (a blocking client needs a server outside its thread)."""

from __future__ import annotations

import base64
import hashlib
import pathlib
from typing import Any

import pytest
from helpers import TESTS, jobserver_config
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from jobfiles_scripts import png

from jupyter_jobserver.client import ENV_TOKEN, ENV_URL, JobServerClient
from jupyter_jobserver.errors import NotFound
from jupyter_jobserver.testing import ServerProcess
from jupyter_jobserver.widgets import JobForm, JobView


@pytest.fixture(scope="module")
def files_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = tmp_path_factory.mktemp("files")
    config = jobserver_config(home)
    config["JobServerApp"]["scripts"]["write_files"] = "jobfiles_scripts:write_files"
    config["JobServerApp"]["scripts"]["greet"] = {
        "notebook": str(TESTS / "notebook_scripts" / "greet.ipynb")
    }
    config["ServerApp"]["jpserver_extensions"].update(
        {"jupyterlab": False, "jupyter_lsp": False, "notebook_shim": False}
    )
    (home / "root").mkdir()
    server = ServerProcess(home, config, python_path=[str(TESTS)]).start()
    yield server
    server.stop()


@pytest.fixture
def client(files_server: Any) -> Any:
    with JobServerClient(files_server.base, files_server.token) as client:
        yield client


def test_job_files_are_listed_and_downloaded_with_their_checksums(
    client: JobServerClient, tmp_path: pathlib.Path
) -> None:
    job = client.run("write_files", kwargs={"text": "xyz"})
    assert job.status == "succeeded", job.record
    assert [f["path"] for f in job.files] == ["plot.png", "sub/deeper/notes.txt", "table.csv"]
    saved = job.download("sub/deeper/notes.txt", tmp_path)
    assert saved == tmp_path / "notes.txt"
    assert saved.read_text() == "xyzxyzxyz"
    notes = next(f for f in job.files if f["path"] == "sub/deeper/notes.txt")
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == notes["sha256"]
    renamed = job.download("table.csv", tmp_path / "mine.csv")
    assert renamed.read_text() == "name,value\nxyz,1\n"
    assert job.file("plot.png") == png()
    with pytest.raises(NotFound):
        job.download("nothing.txt", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.csv", "notes.txt"]


def test_the_magic_shows_images_inline_and_links_the_other_files(
    files_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_URL, files_server.base)
    monkeypatch.setenv(ENV_TOKEN, files_server.token)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "jupyter_jobserver")
    shell.magics_manager.registry["JobServerMagics"]._client = None
    with capture_output() as captured:
        job = shell.run_line_magic("jobserver", "run write_files")
    assert job.status == "succeeded"
    shown = "".join(o.data.get("text/html", "") for o in captured.outputs)
    image = base64.b64encode(png()).decode()
    assert f'<img src="data:image/png;base64,{image}"' in shown
    assert f"jobs/{job.id}/files/table.csv?download=1" in shown
    assert f"jobs/{job.id}/files/sub/deeper/notes.txt?download=1" in shown


def test_a_job_view_shows_the_files_of_the_job(client: JobServerClient) -> None:
    job = client.run("write_files")
    view = JobView(job.id, client, follow=False)
    assert "data:image/png;base64," in view.files.value
    assert "table.csv</a>" in view.files.value
    quiet = JobView(client.run("echo", kwargs={"text": "no files"}), client, follow=False)
    assert quiet.files.value == ""


def test_a_notebook_script_gets_the_form_of_a_function(client: JobServerClient) -> None:
    """A notebook's parameters make the same widgets, checked the same way, and the view
    of its job links the executed notebook."""
    import ipywidgets as widgets

    form = JobForm("greet", client=client)
    kinds = {name: type(field.widget) for name, field in form.fields.items()}
    assert kinds == {
        "name": widgets.Text,
        "times": widgets.IntSlider,
        "scale": widgets.FloatText,
        "loud": widgets.Checkbox,
    }
    times = form.fields["times"].widget
    assert (times.min, times.max, times.value) == (1, 10, 2)
    form.fields["name"].widget.value = "form"
    form.run_button.click()
    assert form.view is not None, form.message.value
    job = form.view.wait(120)
    assert job.status == "succeeded", job.error
    assert job.result["greeting"] == "hello formhello form"
    assert "greet.ipynb</a>" in form.view.files.value
