"""The %jobserver magics in a real IPython shell against a real server."""

from __future__ import annotations

import os
import queue
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from helpers import TESTS, jobserver_config
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from jupyter_jobserver.client import ENV_TOKEN, ENV_URL, Job, JobServerClient
from jupyter_jobserver.magics import parse_value
from jupyter_jobserver.testing import ServerProcess


@pytest.fixture
def shell(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> InteractiveShell:
    # what the extension hands to kernels the server starts
    monkeypatch.setenv(ENV_URL, live_server.base)
    monkeypatch.setenv(ENV_TOKEN, live_server.token)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "jupyter_jobserver")
    # one shell serves every test: its magics find the server afresh, as a new kernel would
    shell.magics_manager.registry["JobServerMagics"]._client = None
    return shell


def watch_following(monkeypatch: pytest.MonkeyPatch) -> queue.Queue[str]:
    """A queue that receives a job's id as soon as the cell follows the job's event
    stream (its first event has arrived), whatever state the job is in by then."""
    following: queue.Queue[str] = queue.Queue()
    events = JobServerClient.events

    def observed(self: JobServerClient, job_id: str) -> Iterator[dict[str, Any]]:
        for number, event in enumerate(events(self, job_id)):
            if number == 0:
                following.put(job_id)
            yield event

    monkeypatch.setattr(JobServerClient, "events", observed)
    return following


def run_cell(shell: InteractiveShell, source: str) -> tuple[Any, Any]:
    with capture_output() as captured:
        result = shell.run_cell(source)
    return result, captured


def test_run_shows_output_and_result_and_returns_the_job(shell: InteractiveShell) -> None:
    with capture_output() as captured:
        job = shell.run_line_magic("jobserver", "run echo text=hello times=3")
    assert isinstance(job, Job)
    assert job.status == "succeeded"
    assert job.kwargs == {"text": "hello", "times": 3}  # "3" was read as the schema's integer
    assert captured.stdout == "hello\nhello\nhello\n"
    assert captured.stderr == "echoed 3 time(s)\n"
    shown = [o.data.get("text/plain", "") for o in captured.outputs]
    assert "'hellohellohello'" in shown  # the result, displayed
    assert any(text.startswith("succeeded") for text in shown)  # the status line


def test_a_dataframe_result_is_shown_as_a_table(shell: InteractiveShell) -> None:
    with capture_output() as captured:
        job = shell.run_line_magic("jobserver", "run summary --datafile timeseries.csv")
    assert isinstance(job.result, pd.DataFrame)
    tables = [o.data["text/html"] for o in captured.outputs if "text/html" in o.data]
    assert any("<table" in html and "temperature" in html for html in tables)


def test_the_cell_body_is_inline_data(shell: InteractiveShell) -> None:
    with capture_output():
        job = shell.run_cell_magic("jobserver", "run table_mean", "value\n1\n2\n6\n")
    assert job.result == 3.0
    assert job.data["datatype"] == "dataframe"
    with capture_output():
        as_json = shell.run_cell_magic("jobserver", "run describe_data", '{"a": 1, "b": 2}')
    assert as_json.result == {"type": "dict", "length": 2}


def test_progress_is_shown_while_the_job_runs(shell: InteractiveShell) -> None:
    with capture_output() as captured:
        shell.run_line_magic("jobserver", "run progress_steps steps=3 delay=0.15")
    bars = [o.data.get("text/plain", "") for o in captured.outputs]
    assert any("%" in bar and "step" in bar for bar in bars)


def test_errors_are_one_line(shell: InteractiveShell) -> None:
    for line, words in [
        ("%jobserver run nope", "UsageError: no script named 'nope'"),
        (
            "%jobserver run echo text=x times=many",
            "parameter 'times' must be an integer, not 'many'",
        ),
        ("%jobserver run echo oops", "parameters are key=value, not 'oops'"),
        ("%jobserver frobnicate", "unknown command 'frobnicate'"),
        ("%jobserver status zz", "'zz' is not a job id"),
        ("%jobserver run echo text=x --raw {", "--raw is not JSON"),
        ("%jobserver upload /no/such/file.csv", "no file '/no/such/file.csv'"),
    ]:
        result, captured = run_cell(shell, line)
        assert isinstance(result.error_in_exec, UsageError), line
        assert words in captured.stderr, (line, captured.stderr)
        assert "Traceback" not in captured.stderr
        assert captured.stderr.count("\n") == 1


def test_options_may_come_anywhere_on_the_line(shell: InteractiveShell) -> None:
    with capture_output():
        first = shell.run_line_magic("jobserver", "run echo --tag early text=a times=2")
        second = shell.run_line_magic("jobserver", "run --tag front echo text=b --public")
    assert (first.kwargs, first.tags) == ({"text": "a", "times": 2}, ["early"])
    assert (second.kwargs, second.tags, second.public) == ({"text": "b"}, ["front"], True)


def test_a_comment_ends_the_line(shell: InteractiveShell) -> None:
    with capture_output():
        job = shell.run_line_magic("jobserver", "run echo text=a#b times=2   # say it twice")
        quoted = shell.run_line_magic("jobserver", "run echo 'text=# not a comment' # one is")
    assert job.kwargs == {"text": "a#b", "times": 2}  # a # inside a word is part of it
    assert quoted.kwargs == {"text": "# not a comment"}
    listing = shell.run_line_magic("jobserver", "scripts   # what can run")
    assert "echo" in repr(listing)


def test_help_lists_each_command_once_and_cleanly(shell: InteractiveShell) -> None:
    with capture_output() as captured:
        shell.run_line_magic("jobserver", "help")
    lines = captured.stdout.splitlines()
    usages = [line.strip() for line in lines if line.startswith("  %jobserver")]
    assert [u.split()[1] for u in usages] == [
        "run", "sweep", "scripts", "list", "status", "output", "cancel", "rerun", "datafiles",
        "upload"
    ]  # fmt: skip
    assert usages[0].startswith("%jobserver run SCRIPT [key=value ...] [--datafile NAME]")
    assert "%jobserver upload PATH [--name NAME] [--overwrite]" in usages
    assert "::" not in captured.stdout and "%_" not in captured.stdout
    assert "-h" not in captured.stdout


def test_conflicts_name_the_magics_own_flag(shell: InteractiveShell, tmp_path: Any) -> None:
    source = tmp_path / "changing.csv"
    source.write_text("value\n1\n")
    with capture_output():
        shell.run_line_magic("jobserver", f"upload {source} --overwrite")
        job = shell.run_line_magic("jobserver", "run table_mean --datafile changing.csv")
    source.write_text("value\n2\n")
    for line, advice in [
        (f"%jobserver upload {source}", "add --overwrite to replace it"),
        (f"%jobserver rerun {job.id}", "add --current-data to use the data as it is now"),
        (f"%jobserver upload {tmp_path}", "is a folder; upload its files one by one"),
        ("%jobserver run add a=nan b=1", "parameter 'a': nan is not a finite number"),
    ]:
        if "rerun" in line:
            with capture_output():
                shell.run_line_magic("jobserver", f"upload {source} --overwrite")
        result, captured = run_cell(shell, line)
        assert isinstance(result.error_in_exec, UsageError), line
        assert advice in captured.stderr, (line, captured.stderr)
        assert "{" not in captured.stderr and "=true" not in captured.stderr
        assert captured.stderr.count("\n") == 1
    with capture_output():
        again = shell.run_line_magic("jobserver", f"rerun {job.id} --current-data")
    assert again.result == 2.0


def test_choices_are_shown_with_the_scripts(shell: InteractiveShell) -> None:
    scripts = repr(shell.run_line_magic("jobserver", "scripts"))
    assert "mode: 'a'|'b' = 'a'" in scripts


def test_a_server_that_goes_away_mid_job_is_one_line(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ServerProcess(tmp_path, jobserver_config(tmp_path), python_path=[str(TESTS)])
    server.start()
    try:
        monkeypatch.setenv(ENV_URL, server.base)
        monkeypatch.setenv(ENV_TOKEN, server.token)
        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", "jupyter_jobserver")
        shell.magics_manager.registry["JobServerMagics"]._client = None
        following = watch_following(monkeypatch)
        assert server.proc is not None
        proc = server.proc

        def kill_once_running() -> None:
            job_id = following.get(timeout=60)
            with JobServerClient(server.base, server.token) as other:
                other.get_job(job_id, wait=60, until="running")
            proc.kill()

        killer = threading.Thread(target=kill_once_running, daemon=True)
        killer.start()
        result, captured = run_cell(shell, "%jobserver run sleepy seconds=120")
        killer.join(30)
    finally:
        server.stop()
    assert isinstance(result.error_in_exec, UsageError)
    assert f"lost the job server at {server.base}" in captured.stderr
    assert "Traceback" not in captured.stderr


def test_no_server_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "jupyter_jobserver")
    magics = shell.magics_manager.registry["JobServerMagics"]
    magics._client = None
    _, captured = run_cell(shell, "%jobserver scripts")
    assert "UsageError: no job server found" in captured.stderr
    assert "Traceback" not in captured.stderr


def test_the_other_commands(shell: InteractiveShell, tmp_path: Any) -> None:
    scripts = shell.run_line_magic("jobserver", "scripts")
    assert "summary" in repr(scripts)
    assert "<table>" in scripts._repr_html_()
    with capture_output():
        job = shell.run_line_magic("jobserver", "run echo text=z --tag magic")
    listing = repr(shell.run_line_magic("jobserver", "list --script echo --limit 50"))
    assert job.id[:8] in listing
    with capture_output() as captured:
        shell.run_line_magic("jobserver", f"status {job.id[:10]}")
    assert captured.stdout.startswith(f"{job.id[:8]}  echo  succeeded")
    with capture_output() as captured:
        shell.run_line_magic("jobserver", f"output {job.id}")
    assert captured.stdout == "z\n"
    with capture_output() as captured:
        shell.run_line_magic("jobserver", f"output {job.id} --stderr")
    assert captured.stdout == "echoed 1 time(s)\n"
    with capture_output():
        again = shell.run_line_magic("jobserver", f"rerun {job.id}")
    assert again.rerun_of == job.id
    assert again.status == "succeeded"
    source = tmp_path / "upload.csv"
    source.write_text("value\n4\n")
    with capture_output() as captured:
        shell.run_line_magic("jobserver", f"upload {source} --overwrite")
    assert captured.stdout.startswith("uploaded upload.csv (8 bytes, sha256")
    assert "upload.csv" in repr(shell.run_line_magic("jobserver", "datafiles"))
    with capture_output() as captured:
        started = shell.run_line_magic("jobserver", "run sleepy seconds=60 --no-wait")
    assert started.status in ("queued", "running")
    assert captured.stdout == f"started job {started.id}\n"  # news, not an error box
    assert captured.stderr == ""
    with capture_output() as captured:
        shell.run_line_magic("jobserver", f"cancel {started.id}")
    assert "cancelled" in captured.stdout
    with capture_output() as captured:
        shell.run_line_magic("jobserver", "help")
    assert "%jobserver run" in captured.stdout
    assert "%jobserver upload" in captured.stdout


def test_interrupting_the_kernel_cancels_the_job(
    shell: InteractiveShell, client: JobServerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    following = watch_following(monkeypatch)

    def interrupt_once_running() -> None:
        job_id = following.get(timeout=60)
        # the server's own wait: it cannot miss a start that happened before it was asked
        with client.clone() as other:
            other.get_job(job_id, wait=60, until="running")
        os.kill(os.getpid(), signal.SIGINT)  # what interrupting the kernel does

    watcher = threading.Thread(target=interrupt_once_running, daemon=True)
    watcher.start()
    with capture_output() as captured:
        job = shell.run_line_magic("jobserver", "run sleepy seconds=120")
    watcher.join(timeout=30)
    assert job.status == "cancelled"
    assert f"cancelled job {job.id}" in captured.stderr
    assert client.get_job(job.id).status == "cancelled"


@pytest.mark.parametrize(
    ("text", "prop", "value"),
    [
        ("3", {"type": "integer"}, 3),
        ("3", {"type": "number"}, 3.0),
        ("3", {"type": "string"}, "3"),
        ("yes", {"type": "boolean"}, True),
        ("off", {"type": "boolean"}, False),
        ("[1, 2]", {"type": "array"}, [1, 2]),
        ('{"a": 1}', {"type": "object"}, {"a": 1}),
        ("none", {"type": ["integer", "null"]}, None),
        ("7", {"type": ["integer", "null"]}, 7),
        ("2", {"enum": [1, 2]}, 2),
        ("x", {"type": "integer"}, "x"),  # the server will say what is wrong
        ("[1]", {}, [1]),
        ("word", {}, "word"),
    ],
)
def test_values_are_read_by_the_schema(text: str, prop: dict, value: Any) -> None:
    assert parse_value(text, prop) == value
