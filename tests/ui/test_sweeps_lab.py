"""Sweeps in JupyterLab, as a person uses them, in a real Chromium.

Each step waits for what the page shows (counts, the progress bar's value, a button's
state); the jobs that must be caught half-way wait at FIFOs the test opens, so nothing
depends on how fast the machine is. Screenshots go to ``test-artifacts/ui/``.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

from playwright.sync_api import expect

from .conftest import STEP, Lab

expect.set_options(timeout=STEP)


def open_gate(path: pathlib.Path) -> None:
    """Let the job waiting at this FIFO through (blocks until the job has opened it)."""
    with path.open("w") as f:
        f.write("go\n")


def sweep_dialog(ui: Lab, script: str) -> Any:
    ui.command("Start a Job Server Sweep")
    form = ui.page.locator(".jp-JobServer-sweep-form")
    form.wait_for(state="visible")
    form.get_by_label("Script").select_option(script)
    return form


def sweep_item(ui: Lab, script: str) -> Any:
    """The newest sweep of ``script`` in the sweeps panel."""
    panel = ui.sidebar("jobserver-sweeps")
    item = panel.locator(".jp-JobServer-sweep").filter(
        has=ui.page.locator(".jp-JobServer-job-script", has_text=script)
    )
    item.first.wait_for()
    return item.first


def sweep_page(ui: Lab, item: Any) -> Any:
    """Open the sweep's page from its item in the panel: counts, progress, results."""
    item.get_by_role("button", name="Results").click()
    page = ui.page.locator(".jp-JobServer-sweep-detail")
    expect(page).to_be_visible()
    return page


def test_start_a_sweep_and_watch_its_progress_and_results(
    lab_page: Lab, tmp_path: pathlib.Path
) -> None:
    ui = lab_page
    gates = [tmp_path / "first", tmp_path / "second"]
    for gate in gates:
        os.mkfifo(gate)
    form = sweep_dialog(ui, "gated")
    form.get_by_label("Values of gate").fill(",".join(map(str, gates)))
    form.get_by_label("Values of fraction").fill("0.5")
    expect(form.get_by_label("Sweep size")).to_have_text("2 jobs")
    ui.shot("dialog")
    form.get_by_role("button", name="Start sweep").click()
    form.wait_for(state="detached")

    item = sweep_item(ui, "gated")
    bar = item.get_by_role("progressbar", name="Sweep progress")
    expect(item.locator(".jp-JobServer-count[data-status='running']")).to_have_text("running 2")
    expect(bar).to_have_attribute("aria-valuenow", "0")
    cancel = item.get_by_role("button", name="Cancel")
    rerun = item.get_by_role("button", name="Rerun failed")
    expect(cancel).to_be_enabled()
    expect(rerun).to_be_disabled()

    open_gate(gates[0])
    expect(item.get_by_label("Jobs done")).to_have_text("1 of 2 done")
    expect(bar).to_have_attribute("aria-valuenow", "50")
    expect(item.locator(".jp-JobServer-count[data-status='succeeded']")).to_have_text("succeeded 1")
    ui.shot("half-way")

    open_gate(gates[1])
    expect(item).to_have_attribute("data-status", "succeeded")
    expect(item.get_by_label("Jobs done")).to_have_text("2 of 2 done")
    expect(bar).to_have_attribute("aria-valuenow", "100")
    expect(cancel).to_be_disabled()
    expect(rerun).to_be_disabled()

    page = sweep_page(ui, item)
    expect(page).to_have_attribute("data-status", "succeeded")
    expect(page.get_by_label("Jobs done")).to_have_text("2 of 2 done")
    table = page.get_by_role("table", name="Sweep results")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(table.locator("thead")).to_contain_text("gate")
    for row, gate in zip(rows.all(), gates, strict=True):
        expect(row).to_contain_text(str(gate))
        expect(row).to_contain_text("through")
        expect(row).to_have_attribute("data-status", "succeeded")
    ui.shot("results")

    # a row's status opens that job's page
    job = rows.first.get_attribute("data-job-id")
    rows.first.locator("a.jp-JobServer-link").click()
    detail = ui.page.locator(".jp-JobServer-job-detail[data-status='succeeded']")
    expect(detail).to_be_visible()
    expect(detail).to_contain_text(str(job))


def test_cancel_a_sweep_of_slow_jobs(lab_page: Lab) -> None:
    ui = lab_page
    ui.sidebar("jobserver-sweeps")
    # made through REST, as a notebook would: the panel shows it as its jobs are queued
    ui.server.call(
        "POST",
        "sweeps",
        {
            "script": "slow",
            "kwargs": {"delay": 0.5},
            "grid": {"steps": [1000, 1000, 1000]},
            "run": True,
        },
    )
    item = sweep_item(ui, "slow")
    expect(item.locator(".jp-JobServer-count[data-status='running']")).to_be_visible()
    cancel = item.get_by_role("button", name="Cancel")
    expect(cancel).to_be_enabled()
    cancel.click()
    expect(item).to_have_attribute("data-status", "cancelled")
    expect(cancel).to_be_disabled()
    expect(item.locator(".jp-JobServer-count[data-status='cancelled']")).to_have_text("cancelled 3")
    expect(item.get_by_label("Jobs done")).to_have_text("3 of 3 done")
    ui.shot("cancelled")


def test_failed_jobs_show_their_errors_and_run_again(lab_page: Lab) -> None:
    ui = lab_page
    form = sweep_dialog(ui, "fail")
    form.get_by_label("Values of message").fill("first, second")
    expect(form.get_by_label("Sweep size")).to_have_text("2 jobs")
    form.get_by_role("button", name="Start sweep").click()
    form.wait_for(state="detached")

    item = sweep_item(ui, "fail")
    expect(item).to_have_attribute("data-status", "failed")
    expect(item.locator(".jp-JobServer-count[data-status='failed']")).to_have_text("failed 2")
    rerun = item.get_by_role("button", name="Rerun failed")
    expect(rerun).to_be_enabled()
    expect(item.get_by_role("button", name="Cancel")).to_be_disabled()

    page = sweep_page(ui, item)
    rows = page.get_by_role("table", name="Sweep results").locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("RuntimeError: first")
    expect(rows.nth(1)).to_contain_text("RuntimeError: second")
    before = [row.get_attribute("data-job-id") for row in rows.all()]
    ui.shot("failed")

    rerun.click()
    # the reruns take the rows over: new jobs, which fail the same way
    for row, old in zip(rows.all(), before, strict=True):
        expect(row).not_to_have_attribute("data-job-id", str(old))
    expect(item).to_have_attribute("data-status", "failed")
    expect(item.get_by_label("Jobs done")).to_have_text("2 of 2 done")
    expect(page).to_have_attribute("data-status", "failed")
    expect(rows.nth(0)).to_contain_text("RuntimeError: first")
    expect(rerun).to_be_enabled()
    ui.shot("rerun")


def test_a_sweep_over_files_selected_in_the_file_browser(lab_page: Lab) -> None:
    ui = lab_page
    folder = ui.server.root / "stations"
    folder.mkdir(exist_ok=True)
    source = pathlib.Path(__file__).parent.parent.parent / "data" / "timeseries.csv"
    names = ["north.csv", "south.csv"]
    for name in names:
        (folder / name).write_text(source.read_text())
    ui.sidebar("filebrowser")
    listing = ui.page.locator("#filebrowser .jp-DirListing-content")
    listing.locator(".jp-DirListing-item[title^='Name: stations']").dblclick()
    first = listing.locator(f".jp-DirListing-item[title^='Name: {names[0]}']")
    second = listing.locator(f".jp-DirListing-item[title^='Name: {names[1]}']")
    first.click()
    second.click(modifiers=["Shift"])
    second.click(button="right")
    ui.page.locator(".lm-Menu-content").get_by_text(
        "Run a Sweep on These Files…", exact=True
    ).click()

    form = ui.page.locator(".jp-JobServer-sweep-form")
    form.wait_for(state="visible")
    form.get_by_label("Script").select_option("summary")
    files = form.get_by_role("group", name="Datafiles")
    for name in names:
        expect(files.get_by_label(name)).to_be_checked()
    expect(form.get_by_label("Sweep size")).to_have_text("2 jobs")
    # a list parameter's values are JSON lists, separated by commas
    form.get_by_label("Values of percentiles").fill("[0.5], [0.1, 0.9]")
    expect(form.get_by_label("Sweep size")).to_have_text("4 jobs")
    ui.shot("dialog")
    form.get_by_role("button", name="Start sweep").click()
    form.wait_for(state="detached")

    item = sweep_item(ui, "summary")
    expect(item).to_have_attribute("data-status", "succeeded")
    page = sweep_page(ui, item)
    rows = page.get_by_role("table", name="Sweep results").locator("tbody tr")
    expect(rows).to_have_count(4)
    for row, name in zip(rows.all(), [names[0]] * 2 + [names[1]] * 2, strict=True):
        expect(row).to_contain_text(name)
        expect(row).to_have_attribute("data-status", "succeeded")
    expect(rows.nth(1)).to_contain_text("[0.1,0.9]")
    ui.shot("results")
