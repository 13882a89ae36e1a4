"""A large datafile uploaded from JupyterLab: the datafiles panel against the file browser.

Both run in the same Chromium, against the same JupyterLab, with the same file:

* the job server's datafiles panel sends the file as the body of one
  ``PUT datafiles/{name}``, streamed by the browser (``XMLHttpRequest``);
* JupyterLab's own file browser upload reads it in 1 MiB pieces, encodes each in
  base64 and saves it through the Contents API (``PUT /api/contents/{path}`` with
  ``chunk``), one request after the other.

Each upload is timed from handing the file to the page until the whole file is on the
server. While it runs, the page records how often it draws (the longest gap between two
animation frames) and, for the panel, each value its progress bar shows: a page that
stayed responsive draws often and its bar moves.

    .venv/bin/python benchmarks/bench_lab_upload.py [--size-mib 500]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jupyter_jobserver.testing import CHROMIUM_ARGS, ServerProcess  # noqa: E402

RESULTS = pathlib.Path(__file__).parent / "results"

RECORDER = """() => {
    const record = { gaps: [], values: [], last: performance.now(), on: true };
    const frame = now => {
        record.gaps.push(now - record.last);
        record.last = now;
        if (record.on) requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
    new MutationObserver(() => {
        const bar = document.querySelector(".jp-JobServer-upload [role=progressbar]");
        const value = bar && bar.getAttribute("aria-valuenow");
        if (value !== null && value !== undefined && record.values.at(-1) !== value) {
            record.values.push(value);
        }
    }).observe(document.body, { subtree: true, childList: true, attributes: true });
    window.__jobserverRecord = record;
}"""

REPORT = """() => {
    const record = window.__jobserverRecord;
    record.on = false;
    const gaps = record.gaps.slice(1);
    return {
        frames: gaps.length,
        longest_frame_gap_ms: Math.max(0, ...gaps),
        progress_values: record.values.length,
    };
}"""


def make_file(path: pathlib.Path, size: int) -> None:
    row = b"2025-01-01T00:00:00,12.345,6.789,0.001\n"
    block = row * ((1 << 20) // len(row) + 1)
    with path.open("wb") as f:
        written = 0
        while written < size:
            piece = block[: size - written]
            f.write(piece)
            written += len(piece)


def chromium() -> str:
    for path in ("/usr/bin/chromium", shutil.which("chromium") or ""):
        if path and os.access(path, os.X_OK):
            return path
    raise SystemExit("Chromium is needed: apt-get install chromium")


def wait_for_size(path: pathlib.Path, size: int, timeout: float = 1800) -> None:
    """Until the file on the server has all its bytes (the Contents API saves piece by
    piece, so the name appears long before the end)."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size == size):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path.name} did not arrive")
        time.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a step may take")
    args = parser.parse_args()
    size = args.size_mib << 20
    from playwright.sync_api import sync_playwright

    home = pathlib.Path(tempfile.mkdtemp(prefix="jobserver-lab-upload-bench-"))
    files = home / "files"
    files.mkdir()
    panel_file = files / "panel-upload.csv"
    browser_file = files / "browser-upload.csv"
    make_file(panel_file, size)
    shutil.copy(panel_file, browser_file)
    settings = home / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    os.environ["JUPYTERLAB_SETTINGS_DIR"] = str(home / "lab-settings")
    os.environ["JUPYTERLAB_WORKSPACES_DIR"] = str(home / "lab-workspaces")
    config = {
        "ServerApp": {"jpserver_extensions": {"jupyter_jobserver": True, "jupyterlab": True}},
        "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"},
        "JobServerApp": {"state_dir": str(home / "state"), "workers": 1},
    }
    server = ServerProcess(home, config, token="bench").start()
    root = home / "root"
    (root / "data").mkdir(exist_ok=True)
    results: dict = {"size_bytes": size}
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                str(home / "profile"),
                executable_path=chromium(),
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 900},
            )
            context.set_default_timeout(args.timeout * 1000)
            page = context.new_page()
            page.goto(f"{server.base}/lab?token={server.token}&reset")
            page.locator(".jp-LauncherCard").first.wait_for()

            # the datafiles panel
            page.locator(".jp-SideBar .lm-TabBar-tab[data-id='jobserver-datafiles']").click()
            page.locator("#jobserver-datafiles .jp-JobServer-panel").wait_for()
            page.evaluate(RECORDER)
            os.sync()
            began = time.perf_counter()
            page.set_input_files("#jobserver-datafiles .jp-JobServer-file-input", panel_file)
            page.locator(
                "#jobserver-datafiles .jp-JobServer-datafile[data-name='panel-upload.csv']"
            ).wait_for()
            seconds = time.perf_counter() - began
            assert (root / "data" / "panel-upload.csv").stat().st_size == size
            results["panel"] = {"seconds": seconds, **page.evaluate(REPORT)}

            # JupyterLab's file browser
            page.locator(".jp-SideBar .lm-TabBar-tab[data-id='filebrowser']").click()
            page.locator("#filebrowser .jp-DirListing").wait_for()
            page.evaluate(RECORDER)
            os.sync()
            with page.expect_file_chooser() as chooser:
                page.locator("#filebrowser .jp-id-upload").click()
            chooser.value.set_files(browser_file)
            # JupyterLab asks before it uploads a large file; the clock starts at "Upload"
            warning = page.locator(".jp-Dialog", has_text="Large file size warning")
            warning.get_by_role("button", name="Upload").click()
            began = time.perf_counter()
            wait_for_size(root / "browser-upload.csv", size, args.timeout)
            seconds = time.perf_counter() - began
            results["file_browser"] = {"seconds": seconds, **page.evaluate(REPORT)}
            context.close()
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)

    for row in (results["panel"], results["file_browser"]):
        row["mb_per_s"] = size / row["seconds"] / 1e6
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lab_upload.json").write_text(json.dumps(results, indent=2))
    panel, browser = results["panel"], results["file_browser"]
    print(f"{args.size_mib} MiB from JupyterLab in Chromium")
    for label, row in (
        ("datafiles panel (PUT datafiles/{name})", panel),
        ("file browser (Contents API, base64)", browser),
    ):
        print(
            f"  {label:42s} {row['seconds']:7.1f} s {row['mb_per_s']:7.1f} MB/s  "
            f"longest frame gap {row['longest_frame_gap_ms']:6.0f} ms"
        )
    ratio = browser["seconds"] / panel["seconds"]
    moved = panel["progress_values"]
    print(f"panel / file browser: {ratio:.1f}x faster (goal: >= 5x)")
    print(
        f"the panel's progress bar showed {moved} values"
        f" ({'it moved' if moved > 2 else 'it did not move'}); the page drew"
        f" {panel['frames']} frames, the longest gap {panel['longest_frame_gap_ms']:.0f} ms"
    )


if __name__ == "__main__":
    main()
