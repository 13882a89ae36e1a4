"""JupyterLab with the job server's extension, as a person uses it, in a real Chromium.

Every step waits for what a person would see (an element, a text, a status); nothing
sleeps for a guessed time. Screenshots of each step go to ``test-artifacts/ui/``.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from playwright.sync_api import expect

from .conftest import STEP, Lab

# assertions on what the page shows wait for it as long as any step may take
expect.set_options(timeout=STEP)

#: bytes per second the browser may send while an upload's progress is watched
THROTTLE = 1_000_000


def throttle_uploads(ui: Lab, rate: int = THROTTLE) -> Any:
    """Slow the page's network down (Chromium's own throttling), so that an upload's
    progress can be seen and acted on; returns the session that undoes it."""
    cdp = ui.page.context.new_cdp_session(ui.page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": rate},
    )
    return cdp


def unthrottle(cdp: Any) -> None:
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    cdp.detach()


def drop_file(ui: Lab, target: str, name: str, size: int = 0, text: str = "") -> None:
    """Drop a file from the desktop on ``target``: a DataTransfer with a File, through
    dragenter, dragover and drop, as the browser dispatches them."""
    ui.page.evaluate(
        """([selector, name, size, text]) => {
            let body = text;
            if (size) {
                const row = "2025-01-01,1.5,2.5,3.5\\n";
                body = "date,a,b,c\\n" + row.repeat(Math.ceil(size / row.length));
            }
            const file = new File([body], name, { type: "text/csv" });
            const data = new DataTransfer();
            data.items.add(file);
            const element = document.querySelector(selector);
            for (const type of ["dragenter", "dragover", "drop"]) {
                element.dispatchEvent(new DragEvent(type, {
                    bubbles: true, cancelable: true, dataTransfer: data
                }));
            }
        }""",
        [target, name, size, text],
    )


DROP_TARGET = "#jobserver-datafiles .jp-JobServer-panel"


def datafile_row(ui: Lab, name: str) -> Any:
    return ui.page.locator(f"#jobserver-datafiles .jp-JobServer-datafile[data-name='{name}']")


def job_row(ui: Lab, status: str | None = None) -> Any:
    rows = ui.page.locator("#jobserver-jobs .jp-JobServer-job")
    return rows.and_(ui.page.locator(f"[data-status='{status}']")) if status else rows


def detail(ui: Lab, status: str) -> Any:
    page = ui.page.locator(f".jp-JobServer-job-detail[data-status='{status}']")
    page.wait_for(state="visible")
    return page


def open_run_dialog(ui: Lab, script: str) -> Any:
    ui.command("Run a Job Server Script")
    form = ui.page.locator(".jp-JobServer-run-form")
    form.wait_for(state="visible")
    form.get_by_label("Script").select_option(script)
    form.locator(".jp-JobServer-script-description").filter(
        has_text=script_description(ui, script)
    ).wait_for()
    return form


def script_description(ui: Lab, script: str) -> str:
    scripts = ui.server.call("GET", "scripts")["scripts"]
    return next(s for s in scripts if s["name"] == script)["description"].split("\n")[0]


def field(form: Any, name: str) -> Any:
    return form.locator(f"#root_{name}")


def test_drop_a_csv_on_the_datafiles_panel(lab_page: Lab) -> None:
    ui = lab_page
    ui.sidebar("jobserver-datafiles")
    ui.shot("panel")
    cdp = throttle_uploads(ui)
    try:
        drop_file(ui, DROP_TARGET, "dropped.csv", size=3_000_000)
        upload = ui.page.locator(".jp-JobServer-upload[data-name='dropped.csv']")
        upload.wait_for(state="visible")
        # the bar moves while the file is on its way
        ui.page.wait_for_function(
            """() => {
                const bar = document.querySelector(
                    ".jp-JobServer-upload[data-name='dropped.csv'] [role=progressbar]");
                return bar && Number(bar.getAttribute("aria-valuenow")) >= 10;
            }"""
        )
        assert upload.get_by_role("button").first.is_enabled()  # cancel is offered
        ui.shot("uploading")
    finally:
        unthrottle(cdp)
    row = datafile_row(ui, "dropped.csv")
    row.wait_for(state="visible")
    upload.wait_for(state="detached")
    expect(row).to_contain_text("3.0 MB")
    expect(row).to_contain_text("sha256")
    size = (ui.server.root / "data" / "dropped.csv").stat().st_size
    assert size >= 3_000_000
    ui.shot("uploaded")


def test_cancel_an_upload(lab_page: Lab) -> None:
    ui = lab_page
    ui.sidebar("jobserver-datafiles")
    cdp = throttle_uploads(ui, 200_000)
    try:
        drop_file(ui, DROP_TARGET, "cancelled.csv", size=5_000_000)
        upload = ui.page.locator(".jp-JobServer-upload[data-name='cancelled.csv']")
        upload.wait_for(state="visible")
        upload.get_by_title("Cancel the upload of cancelled.csv").click()
        upload.wait_for(state="detached")
    finally:
        unthrottle(cdp)
    ui.shot("cancelled")
    assert not (ui.server.root / "data" / "cancelled.csv").exists()
    assert datafile_row(ui, "cancelled.csv").count() == 0


def test_preview_a_datafile(lab_page: Lab) -> None:
    ui = lab_page
    ui.sidebar("jobserver-datafiles")
    row = datafile_row(ui, "timeseries.csv")
    row.hover()
    row.get_by_title("Preview timeseries.csv").click()
    preview = ui.page.locator(".jp-JobServer-preview table")
    preview.wait_for()
    expect(preview.locator("thead")).to_contain_text("temperature")
    assert preview.locator("tbody tr").count() == 20  # the setting's default
    ui.page.locator(".jp-JobServer-preview", has_text="The first 20 of 365 rows").wait_for()
    ui.shot("preview")


def test_replacing_a_datafile_asks_first(lab_page: Lab) -> None:
    ui = lab_page
    (ui.server.root / "data" / "replace-me.csv").write_text("a\n1\n")
    panel = ui.sidebar("jobserver-datafiles")
    panel.get_by_title("Refresh the list").click()
    datafile_row(ui, "replace-me.csv").wait_for()

    drop_file(ui, DROP_TARGET, "replace-me.csv", text="a\n1\n2\n3\n")
    dialog = ui.page.locator(".jp-Dialog", has_text="Replace datafile?")
    dialog.wait_for(state="visible")
    expect(dialog).to_contain_text('A datafile named "replace-me.csv" exists already')
    ui.shot("asks")
    dialog.get_by_role("button", name="Cancel").click()
    dialog.wait_for(state="detached")
    assert (ui.server.root / "data" / "replace-me.csv").read_text() == "a\n1\n"

    drop_file(ui, DROP_TARGET, "replace-me.csv", text="a\n1\n2\n3\n")
    dialog.wait_for(state="visible")
    dialog.get_by_role("button", name="Replace").click()
    datafile_row(ui, "replace-me.csv").filter(has_text="8 B").wait_for()
    assert (ui.server.root / "data" / "replace-me.csv").read_text() == "a\n1\n2\n3\n"
    ui.shot("replaced")


def test_add_a_file_from_the_file_browser_and_run_summary_on_it(lab_page: Lab) -> None:
    ui = lab_page
    results = ui.server.root / "results"
    results.mkdir(exist_ok=True)
    source = pathlib.Path(__file__).parent.parent.parent / "data" / "timeseries.csv"
    (results / "measured.csv").write_text(source.read_text())
    ui.sidebar("filebrowser")
    listing = ui.page.locator("#filebrowser .jp-DirListing-content")
    listing.locator(".jp-DirListing-item[title^='Name: results']").dblclick()
    item = listing.locator(".jp-DirListing-item[title^='Name: measured.csv']")
    item.click(button="right")
    menu = ui.page.locator(".lm-Menu-content")
    ui.shot("context-menu")
    menu.get_by_text("Add to Job Server Data", exact=True).click()
    ui.notification("Added measured.csv to the job server data")
    ui.sidebar("jobserver-datafiles")
    datafile_row(ui, "measured.csv").wait_for()
    assert (ui.server.root / "data" / "measured.csv").read_text() == source.read_text()
    ui.shot("added")

    # "Run a script on this file": the datafile exists now, so it asks, and runs on it
    ui.sidebar("filebrowser")
    item.click(button="right")
    menu.get_by_text("Run a Script on This File…", exact=True).click()
    question = ui.page.locator(".jp-Dialog", has_text="Replace datafile?")
    question.get_by_role("button", name="Use Existing").click()
    form = ui.page.locator(".jp-JobServer-run-form")
    form.wait_for(state="visible")
    form.get_by_label("Script").select_option("summary")
    assert form.get_by_label("Datafile name").input_value() == "measured.csv"
    ui.shot("run-dialog")
    form.get_by_role("button", name="Run").click()
    form.wait_for(state="detached")

    job = detail(ui, "succeeded")
    job.locator(".jp-JobServer-output", has_text="summarizing 365 rows").wait_for()
    table = job.locator(".jp-JobServer-result table")
    table.wait_for()
    expect(table).to_contain_text("temperature")
    expect(table).to_contain_text("mean")
    ui.notification("Job summary succeeded")
    job_row(ui, "succeeded").first.wait_for()
    ui.shot("succeeded")


def test_watch_a_job_live_then_use_it_in_a_notebook(lab_page: Lab) -> None:
    ui = lab_page
    ui.sidebar("jobserver-jobs")
    form = open_run_dialog(ui, "slow")
    field(form, "steps").fill("6")
    field(form, "delay").fill("0.4")
    form.get_by_role("button", name="Run").click()
    form.wait_for(state="detached")
    # the list and the page follow the job as the server's events say
    running = job_row(ui, "running").filter(has_text="slow")
    running.wait_for()
    page = detail(ui, "running")
    page.locator(".jp-JobServer-output", has_text="step 1 of 6").wait_for()
    ui.page.locator(".jp-JobServer-statusbar-text", has_text="Jobs: 1 running").wait_for()
    ui.shot("running")
    detail(ui, "succeeded").locator(".jp-JobServer-output", has_text="step 6 of 6").wait_for()
    job_row(ui, "succeeded").filter(has_text="slow").first.wait_for()
    expect(ui.page.locator(".jp-JobServer-statusbar-text")).to_have_text(
        "Jobs: 0 running, 0 queued"
    )
    ui.shot("succeeded")

    # "Use in a notebook" writes the Python client's call into the current notebook
    job_id = ui.page.locator(".jp-JobServer-facts dd.jp-JobServer-code").inner_text()
    ui.command("New Notebook")
    ui.start_kernel()
    ui.page.locator(".lm-TabBar-tab", has_text="slow").first.click()
    ui.page.get_by_role("button", name="Use in a notebook").click()
    call = f'JobServerClient().get_job("{job_id}")'
    cell = ui.page.locator(".jp-NotebookPanel .jp-Cell", has_text=call).first
    cell.wait_for()
    expect(cell).to_contain_text("from jupyter_jobserver.client import JobServerClient")
    ui.shot("notebook-cell")


def test_cancel_a_running_slow_job(lab_page: Lab) -> None:
    ui = lab_page
    ui.sidebar("jobserver-jobs")
    form = open_run_dialog(ui, "slow")
    field(form, "steps").fill("1000")
    form.get_by_role("button", name="Run").click()
    page = detail(ui, "running")
    page.locator(".jp-JobServer-output", has_text="step 1 of 1000").wait_for()
    cancel = page.get_by_role("button", name="Cancel")
    assert cancel.is_enabled()
    cancel.click()
    cancelled = detail(ui, "cancelled")
    assert cancelled.get_by_role("button", name="Cancel").is_disabled()
    job_row(ui, "cancelled").first.wait_for()
    ui.notification("Job slow cancelled")
    ui.shot("cancelled")


def test_a_refused_value_is_marked_before_and_after_submission(lab_page: Lab) -> None:
    ui = lab_page
    form = open_run_dialog(ui, "slow")
    run = form.get_by_role("button", name="Run")
    assert run.is_enabled()
    field(form, "steps").fill("0")
    form.locator(".validationErrors", has_text="must be >= 1").wait_for()
    assert run.is_disabled()
    expect(form).to_contain_text("One value to correct")
    ui.shot("marked")
    field(form, "steps").fill("2")
    form.locator(".validationErrors", has_text="must be >= 1").wait_for(state="detached")
    assert run.is_enabled()

    # what only the server can check comes back next to the form, which stays open
    form.get_by_label("Script").select_option("summary")
    form.get_by_label("Inline JSON", exact=True).check()
    form.get_by_label("Datatype").select_option("dataframe")
    form.get_by_label("Inline data (JSON)").fill(json.dumps({"not": "a table"}))
    run.click()
    refusal = form.locator(".jp-JobServer-error")
    refusal.wait_for()
    assert refusal.inner_text()
    ui.shot("server-refusal")
    form.get_by_role("button", name="Cancel").click()
    form.wait_for(state="detached")


def test_a_job_form_widget_in_a_notebook(lab_page: Lab) -> None:
    ui = lab_page
    notebook = {
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": [
                    "from jupyter_jobserver.widgets import JobForm\n",
                    'form = JobForm("slow")\n',
                    'form.fields["steps"].widget.value = 2\n',
                    'form.fields["delay"].widget.value = 0.1\n',
                    "form",
                ],
            }
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (ui.server.root / "form.ipynb").write_text(json.dumps(notebook))
    ui.page.goto(f"{ui.server.base}/lab/tree/form.ipynb?token={ui.server.token}")
    ui.start_kernel()
    ui.menu("Run", "Run All Cells")
    run = ui.page.locator(".jp-OutputArea-output .widget-button", has_text="Run")
    run.wait_for()
    ui.shot("form")
    run.click()
    ui.page.locator(".jp-OutputArea-output", has_text="step 2 of 2").first.wait_for()
    ui.page.locator(".jp-OutputArea-output", has_text="succeeded").first.wait_for()
    ui.shot("submitted")
