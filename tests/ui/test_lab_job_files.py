"""A job's files in JupyterLab's job page, in a real Chromium: listed with download
links that the browser's own session can follow, and images shown."""

from __future__ import annotations

from playwright.sync_api import expect

from .conftest import STEP, Lab

expect.set_options(timeout=STEP)


def test_a_jobs_page_lists_its_files_with_download_links(lab_page: Lab) -> None:
    ui = lab_page
    job = ui.server.call("POST", "jobs", {"script": "write_files", "run": True})
    ui.server.call("GET", f"jobs/{job['id']}?wait=60")
    ui.sidebar("jobserver-jobs")
    row = ui.page.locator("#jobserver-jobs .jp-JobServer-job[data-status='succeeded']")
    row.filter(has_text="write_files").first.click()
    page = ui.page.locator(".jp-JobServer-job-detail[data-status='succeeded']")
    files = page.get_by_label("Job files")
    table = files.get_by_role("link", name="table.csv")
    expect(table).to_have_attribute("download", "table.csv")
    expect(files.get_by_role("link", name="sub/deeper/notes.txt")).to_be_visible()
    image = files.locator("img[alt='plot.png']")
    expect(image).to_be_visible()
    # the image arrived through the browser's session (its cookie), not a token in the URL
    assert image.evaluate("img => img.complete && img.naturalWidth") == 2
    href = table.get_attribute("href")
    assert href is not None and href.endswith(f"jobs/{job['id']}/files/table.csv?download=1")
    text = ui.page.evaluate("url => fetch(url).then(r => r.text())", href)
    assert text == "name,value\nhello,1\n"
    ui.shot("job-files")


def test_the_executed_notebook_of_a_job_opens_in_jupyterlab(lab_page: Lab) -> None:
    ui = lab_page
    job = ui.server.call(
        "POST", "jobs", {"script": "sine_table", "kwargs": {"points": 7}, "run": True}
    )
    assert ui.server.call("GET", f"jobs/{job['id']}?wait=120")["status"] == "succeeded"
    ui.sidebar("jobserver-jobs")
    row = ui.page.locator("#jobserver-jobs .jp-JobServer-job[data-status='succeeded']")
    row.filter(has_text="sine_table").first.click()
    page = ui.page.locator(".jp-JobServer-job-detail[data-status='succeeded']")
    files = page.get_by_label("Job files")
    files.get_by_role("button", name="Open").click()
    name = f"sine_table-job-{job['id'][:8]}.ipynb"
    ui.page.locator(".lm-TabBar-tab", has_text=name).wait_for()
    notebook = ui.page.locator(".jp-NotebookPanel").filter(has_text="7 points over 2 period(s)")
    expect(notebook.first).to_be_visible()
    expect(notebook.first).to_contain_text("points = 7")  # the injected parameters
    assert (ui.server.root / name).exists()  # type: ignore[attr-defined]
    ui.shot("executed-notebook")
