"""The widgets, built and driven from Python against a real server (no browser needed)."""

from __future__ import annotations

import datetime
from typing import Any

import ipywidgets as widgets
import pytest

from jupyter_jobserver.client import JobServerClient
from jupyter_jobserver.errors import Conflict
from jupyter_jobserver.widgets import JobForm, JobList, JobView
from jupyter_jobserver.widgets.fields import fields_for
from jupyter_jobserver.widgets.form import DATAFILE, DOCUMENT, INLINE, NO_DATA


def stream_text(output: widgets.Output, name: str = "stdout") -> str:
    return "".join(o["text"] for o in output.outputs if o.get("name") == name)


def shown(output: widgets.Output, mime: str = "text/plain") -> list[str]:
    return [o["data"][mime] for o in output.outputs if mime in o.get("data", {})]


def test_parameter_widgets_follow_the_schema(client: JobServerClient) -> None:
    form = JobForm("types_demo", client=client)
    kinds = {name: type(field.widget) for name, field in form.fields.items()}
    assert kinds == {
        "n": widgets.Text,  # required: typed in, never a made-up 0
        "x": widgets.FloatText,
        "flag": widgets.Checkbox,
        "mode": widgets.Dropdown,
        "items": widgets.Textarea,
        "label": widgets.Text,
    }
    assert form.fields["mode"].widget.options == ("a", "b")
    assert form.fields["label"].widget.value == "lbl"
    echo = JobForm("echo", client=client)
    times = echo.fields["times"].widget
    assert isinstance(times, widgets.IntSlider)
    assert (times.min, times.max, times.value) == (1, 100, 1)
    assert echo.data_kind.options == (NO_DATA,)  # echo takes no data
    summary = JobForm("summary", client=client)
    assert summary.data_kind.options == (DATAFILE, DOCUMENT, INLINE)  # summary needs data


def test_invalid_values_are_marked_before_submission(client: JobServerClient) -> None:
    form = JobForm("types_demo", client=client)
    n = form.fields["n"]
    assert "required" in n.error.value  # no default: the person must choose
    assert form.run_button.disabled
    n.widget.value = "2.5"
    assert "must be an integer" in n.error.value
    n.widget.value = "seven"
    assert "must be an integer" in n.error.value
    n.widget.value = "7"
    assert n.error.value == ""
    items = form.fields["items"]
    items.widget.value = "[1, 'x'"
    assert "not valid JSON" in items.error.value
    assert "jobserver-invalid" in items.widget._dom_classes
    assert form.run_button.disabled
    assert "items: not valid JSON" in form.message.value
    form.run_button.click()  # a disabled button that is clicked anyway runs nothing
    assert form.view is None
    items.widget.value = '[1, "x"]'
    assert "item 1 must be an integer" in items.error.value
    items.widget.value = "[1, 2]"
    assert items.error.value == ""
    form.fields["label"].widget.value = "far too long a label"
    assert "at most 10 characters" in form.fields["label"].error.value
    form.fields["label"].widget.value = "ok"
    assert not form.run_button.disabled
    assert form.values() == {
        "n": 7,
        "x": 1.5,
        "flag": False,
        "mode": "a",
        "items": [1, 2],
        "label": "ok",
    }


def test_required_parameters_start_empty_whatever_their_type() -> None:
    schema = {
        "properties": {
            "flag": {"type": "boolean"},
            "mode": {"enum": ["fast", "exact"]},
            "name": {"type": "string"},
            "ratio": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["flag", "mode", "name", "ratio"],
    }
    fields = {f.name: f for f in fields_for(schema)}
    assert all(f.check() == "required" for f in fields.values())
    fields["flag"].widget.value = False
    fields["mode"].widget.value = "exact"
    fields["name"].widget.value = "x"
    fields["ratio"].widget.value = "0.25"
    assert [f.value() for f in fields.values()] == [False, "exact", "x", 0.25]
    assert all(f.check() is None for f in fields.values())
    fields["ratio"].widget.value = "2"
    assert fields["ratio"].check() == "must be at most 1, not 2"


def test_a_slider_can_land_on_its_default(client: JobServerClient) -> None:
    delay = JobForm("slow", client=client).fields["delay"].widget
    assert isinstance(delay, widgets.FloatSlider)
    assert (delay.min, delay.max, delay.value) == (0, 60, 0.5)
    assert delay.step == 0.1  # round steps, and the default is one of them


def test_submit_runs_the_job_and_shows_output_and_result(client: JobServerClient) -> None:
    form = JobForm("echo", client=client)
    form.fields["text"].widget.value = "hi"
    form.fields["times"].widget.value = 2
    form.run_button.click()
    assert form.view is not None
    job = form.view.wait(60)
    assert job.status == "succeeded"
    assert job.kwargs == {"text": "hi", "times": 2}
    assert stream_text(form.view.output) == "hi\nhi\n"
    assert stream_text(form.view.output, "stderr") == "echoed 2 time(s)\n"
    assert shown(form.view.result) == ["'hihi'"]
    assert "succeeded" in form.view.status.value
    assert form.view.progress.value == 1.0
    assert "started job" in form.message.value


def browser_upload(name: str, content: bytes) -> tuple[dict[str, Any], ...]:
    """What the Upload button's value becomes when a person picks a file."""
    return (
        {
            "name": name,
            "type": "text/csv",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime.datetime.now(datetime.timezone.utc),
        },
    )


def run_from_the_form(form: JobForm) -> Any:
    """Press Run as a person would: it must be enabled; the form then shows the job."""
    assert not form.run_button.disabled, form.message.value
    before = form.view
    form.run_button.click()
    assert form.view is not None and form.view is not before, form.message.value
    return form.view.wait(60)


def test_choosing_a_datafile_in_the_dropdown_enables_run(client: JobServerClient) -> None:
    form = JobForm("summary", client=client)
    form.data_kind.value = DATAFILE
    names = [f["name"] for f in client.datafiles()]
    assert form.datafile.value == names[0]  # a datafile is chosen from the start
    assert not form.run_button.disabled
    form.datafile.value = "timeseries.csv"  # a person picks one
    assert not form.run_button.disabled
    assert form.message.value == ""
    done = run_from_the_form(form)
    assert done.status == "succeeded"
    assert done.data == {"type": "datafile", "name": "timeseries.csv"}
    assert any("<table" in html for html in shown(form.view.result, "text/html"))


def test_data_from_an_upload_a_document_and_inline(client: JobServerClient, tmp_path: Any) -> None:
    mean = JobForm("table_mean", client=client)
    mean.data_kind.value = DATAFILE
    mean.upload.value = browser_upload("fromwidget.csv", b"value\n3\n5\n")
    assert mean.datafile.value == "fromwidget.csv"  # the file just uploaded is chosen
    assert "uploaded fromwidget.csv" in mean.message.value
    assert "choose" not in mean.message.value
    assert run_from_the_form(mean).result == 4.0

    before = client.datafile("fromwidget.csv")["sha256"]
    mean.upload.value = browser_upload("fromwidget.csv", b"value\n9\n")
    assert "a datafile named fromwidget.csv exists" in mean.message.value
    assert client.datafile("fromwidget.csv")["sha256"] == before  # nothing replaced unasked
    mean.replace.value = True  # ticking "replace" sends the file that was held back
    assert "uploaded fromwidget.csv" in mean.message.value
    assert client.datafile("fromwidget.csv")["sha256"] != before
    assert run_from_the_form(mean).result == 9.0

    local = tmp_path / "local.csv"
    local.write_text("value\n7\n")
    mean.upload_file(local)  # the same from Python
    assert mean.datafile.value == "local.csv"
    assert run_from_the_form(mean).result == 7.0
    local.write_text("value\n8\n")
    with pytest.raises(Conflict, match="exists"):
        mean.upload_file(local)
    mean.upload_file(local, overwrite=True)
    assert run_from_the_form(mean).result == 8.0

    document = client.create_data(
        "widget doc", [{"value": 10}, {"value": 20}], datatype="dataframe"
    )
    mean.data_kind.value = DOCUMENT
    assert mean.document.value is not None  # a document is chosen from the start
    mean.document.value = document["id"]  # a person picks one
    assert run_from_the_form(mean).result == 15.0

    mean.data_kind.value = INLINE
    assert mean.run_button.disabled
    assert "write the inline data as JSON" in mean.message.value  # not a parser's message
    assert "Expecting value" not in mean.message.value
    mean.inline.value = '[{"value": 1}, {"value": 2}'
    assert mean.run_button.disabled
    assert "the inline data is not JSON" in mean.message.value
    mean.inline.value = '[{"value": 1}, {"value": 2}]'
    mean.inline_datatype.value = "dataframe"
    assert run_from_the_form(mean).result == 1.5


def test_the_servers_refusal_is_shown_on_the_form(client: JobServerClient) -> None:
    form = JobForm("table_mean", client=client)
    form.data_kind.value = INLINE
    form.inline.value = "[1, 2, 3]"
    form.inline_datatype.value = "ndarray"
    form.run_button.click()
    assert form.view is None
    assert "takes a table, not ndarray data" in form.message.value


def test_a_view_of_a_finished_or_failed_job(client: JobServerClient) -> None:
    job = client.run("raises", kwargs={"message": "broken"})
    view = JobView(job.id, client)
    assert view.wait(30).status == "failed"
    assert "ValueError: broken" in stream_text(view.result, "stderr")
    assert view.cancel_button.layout.display == "none"
    done = client.run("echo", kwargs={"text": "again", "times": 2})
    view = JobView(done, client)
    assert view.wait(30).status == "succeeded"
    assert stream_text(view.output) == "again\nagain\n"  # what it printed, shown after the fact
    assert stream_text(view.output, "stderr") == "echoed 2 time(s)\n"
    assert shown(view.result) == ["'againagain'"]


def test_a_running_job_can_be_cancelled_from_its_view(client: JobServerClient) -> None:
    job = client.create_job("sleepy", kwargs={"seconds": 60}, run=True)
    view = JobView(job, client)
    client.get_job(job.id, wait=30, until="running")
    view.cancel_button.click()
    assert view.wait(30).status == "cancelled"


def test_closing_a_view_stops_following_its_job(client: JobServerClient) -> None:
    job = client.create_job("sleepy", kwargs={"seconds": 60}, run=True)
    try:
        view = JobView(job, client)
        client.get_job(job.id, wait=30, until="running")
        view.close()  # the job runs on; the view stops listening to it
        assert view._thread is not None and not view._thread.is_alive()
        assert "lost the job server" not in view.status.value
        assert client.get_job(job.id).status == "running"
    finally:
        client.cancel(job.id)


def test_the_job_list_follows_changes_and_acts(client: JobServerClient) -> None:
    job_list = JobList(client, limit=5)
    try:
        job_list.changed.clear()
        job = client.run("echo", kwargs={"text": "listed"})
        assert job_list.changed.wait(30)
        while job.id not in [j.id for j in job_list.jobs]:  # the newest events may still come
            assert job_list.changed.wait(30)
            job_list.changed.clear()
        cells = job_list.table.children
        assert len(cells) == 6 * (len(job_list.jobs) + 1)
        assert f"<code>{job.id[:8]}</code>" in [
            c.value for c in cells if isinstance(c, widgets.HTML)
        ]
        view = job_list.show(job.id)
        assert view.wait(5).result == "listed"
        row = [j.id for j in job_list.jobs].index(job.id)
        buttons = cells[6 * (row + 1) + 5].children
        buttons[2].click()  # rerun
        rerun = job_list.detail.children[0]
        assert rerun.wait(60).record["rerun_of"] == job.id
    finally:
        job_list.close()
    assert not job_list._thread.is_alive()  # closing ends its event stream and thread


def test_a_views_output_follows_the_newest_line(client: JobServerClient) -> None:
    job = client.run("echo", kwargs={"text": "line", "times": 50})
    view = JobView(job, client)
    view.wait(30)
    layout = view.output.layout
    # a scrolling box laid out from its end: the newest line is the one in sight
    assert (layout.overflow, layout.display, layout.flex_flow) == ("auto", "flex", "column-reverse")
    assert stream_text(view.output).splitlines() == ["line"] * 50  # in order all the same
