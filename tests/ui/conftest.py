"""UI tests: a real JupyterLab with the extension, driven in a real Chromium.

The browser is Debian's Chromium (``apt-get install chromium``), driven by the
``playwright`` package; nothing is downloaded. Without Chromium the tests are skipped on
a developer's machine and fail in CI (``CI=true``), so a CI that lost its browser cannot
pass by running nothing.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from jupyter_jobserver.testing import CHROMIUM_ARGS

TESTS = pathlib.Path(__file__).parent.parent
REPO = TESTS.parent
sys.path.insert(0, str(TESTS))

ARTIFACTS = REPO / "test-artifacts" / "ui"
#: how long a step may take before the test fails (a wait for an event, not a sleep);
#: generous, since a kernel starting on a busy two-core machine can take most of a minute
STEP = 120_000


def chromium_path() -> str | None:
    for candidate in (os.environ.get("JUPYTER_JOBSERVER_CHROMIUM"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = pathlib.Path(__file__).parent
    ui_items = [item for item in items if here in pathlib.Path(str(item.fspath)).parents]
    for item in ui_items:
        item.add_marker(pytest.mark.ui)
    if chromium_path() is None and not in_ci():
        skip = pytest.mark.skip(reason="Chromium is not installed (apt-get install chromium)")
        for item in ui_items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def chromium() -> str:
    path = chromium_path()
    if path is None:  # only in CI: elsewhere the tests were skipped
        pytest.fail("CI must run the UI tests, and Chromium is missing: apt-get install chromium")
    return path


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """JupyterLab with the job server, on a free loopback port, with its own root, state,
    runtime and config folders."""
    from helpers import FILE_SCRIPTS, FILESCRIPTS, TEST_SCRIPTS

    from jupyter_jobserver.testing import ServerProcess

    home = tmp_path_factory.mktemp("lab")
    (home / "root" / "data").mkdir(parents=True)
    shutil.copy(REPO / "data" / "timeseries.csv", home / "root" / "data" / "timeseries.csv")
    config = {
        "ServerApp": {"jpserver_extensions": {"jupyter_jobserver": True, "jupyterlab": True}},
        "LabApp": {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"},
        "JobServerApp": {
            "state_dir": str(home / "state"),
            "workers": 2,
            "scripts": {
                **TEST_SCRIPTS,
                **FILE_SCRIPTS,
                "write_files": "jobfiles_scripts:write_files",
            },
            "script_dirs": [str(FILESCRIPTS)],
        },
        "LocalExecutor": {"total_cores": 2},
    }
    # JupyterLab's own settings and workspaces in the test's folder too, not the account's;
    # no prompt about Jupyter news over the panels
    settings = home / "lab-settings"
    notification = (
        settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    )
    notification.parent.mkdir(parents=True)
    notification.write_text('{"fetchNews": "false", "checkForUpdates": false}')
    lab_env = {
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "lab-workspaces"),
    }
    saved = {key: os.environ.get(key) for key in lab_env}
    os.environ.update(lab_env)
    server = ServerProcess(home, config, token="ui-secret", python_path=[str(TESTS)])
    try:
        server.start()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    server.root = home / "root"  # type: ignore[attr-defined]
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # this run's screenshots only
    profile = tempfile.mkdtemp(prefix="jobserver-chromium-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        context.set_default_timeout(STEP)
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


class Lab:
    """A JupyterLab page and the steps a person takes in it."""

    def __init__(self, page: Any, server: Any, name: str) -> None:
        self.page = page
        self.server = server
        self.name = name
        self.shots = 0
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def open(self) -> Lab:
        self.page.goto(f"{self.server.base}/lab?token={self.server.token}&reset")
        self.page.locator("#jp-main-dock-panel").wait_for()
        self.page.locator(".jp-LauncherCard").first.wait_for()
        return self

    def shot(self, step: str) -> pathlib.Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        path = ARTIFACTS / f"{self.name}-{self.shots:02d}-{step}.png"
        self.page.screenshot(path=str(path))
        return path

    def sidebar(self, panel_id: str) -> Any:
        """Show a left sidebar panel by its tab and return the panel."""
        panel = self.page.locator(f"#{panel_id}")
        if not panel.is_visible():
            self.page.locator(f".jp-SideBar .lm-TabBar-tab[data-id='{panel_id}']").click()
        panel.wait_for(state="visible")
        return panel

    def command(self, label: str) -> None:
        """Run a command from the command palette."""
        self.menu("View", "Activate Command Palette")
        search = self.page.locator(".lm-CommandPalette-input")
        search.wait_for(state="visible")
        search.fill(label)
        self.page.locator(".lm-CommandPalette-item", has_text=label).first.click()

    def menu(self, menu: str, item: str) -> None:
        """Choose an item of a menu of the menu bar."""
        self.page.locator(".lm-MenuBar-item", has_text=menu).click()
        self.page.locator(".lm-Menu-item", has_text=item).first.click()

    def start_kernel(self) -> None:
        """Wait for the open notebook's kernel; choose the default one if JupyterLab asks.
        The toolbar names the kernel once one is chosen (an indicator may say idle while
        there is none yet), and after that JupyterLab asks nothing more."""
        choose = self.page.locator(".jp-Dialog", has_text="Select Kernel")
        chosen = self.page.locator(".jp-NotebookPanel .jp-Toolbar-kernelName", has_text="Python")
        idle = self.page.locator(
            ".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']"
        )
        choose.or_(chosen).first.wait_for()
        if choose.is_visible():
            choose.get_by_role("button", name="Select").click()
        chosen.wait_for()
        idle.wait_for()

    def notification(self, text: str) -> Any:
        toast = self.page.locator(".Toastify__toast", has_text=text).first
        toast.wait_for(state="visible")
        return toast


@pytest.fixture
def lab_page(browser: Any, lab: Any, request: pytest.FixtureRequest) -> Iterator[Lab]:
    page = browser.new_page()
    ui = Lab(page, lab, request.node.name.replace("test_", "").replace("[", "-").strip("]"))
    ui.open()
    yield ui
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        ui.shot("failure")
    page.close()
    assert not ui.errors, f"errors on the page: {ui.errors}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
    return report


@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> None:
    """No asyncio loop of pytest-jupyter's here: Playwright's sync API runs its own in this
    thread, and pytest-jupyter would close it after each test."""
    return


@pytest.fixture(autouse=True)
def jp_server_cleanup() -> None:
    """The UI tests' Jupyter server is a child process: nothing in this one to clean."""
