"""Sweeps from a notebook against a real server (in a child process): the client's
``sweep`` and ``map``, ``%jobserver sweep`` in a real IPython shell, and ``SweepView``."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from jupyter_jobserver.client import (
    ENV_TOKEN,
    ENV_URL,
    AsyncJobServerClient,
    JobServerClient,
    Sweep,
)
from jupyter_jobserver.widgets import SweepView


def test_sweep_and_map_give_a_sweep_to_wait_for_and_a_dataframe(client: JobServerClient) -> None:
    sweep = client.sweep("power", grid={"x": [1, 2, 3], "n": [2]})
    assert isinstance(sweep, Sweep) and sweep.size == 3
    sweep.wait(60)
    assert sweep.finished and sweep.status == "succeeded"
    assert sweep.progress == {"done": 3, "total": 3, "fraction": 1.0}
    frame = sweep.results()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["x"]) == [1, 2, 3]
    assert list(frame["result"]) == [1, 4, 9]
    assert set(frame["status"]) == {"succeeded"}

    mapped = client.map("power", [{"x": 2, "n": 3}, {"x": -1}]).wait(60)
    frame = mapped.results()
    assert frame.loc[0, "result"] == 8
    assert frame.loc[1, "status"] == "failed"
    assert "x must not be negative" in frame.loc[1, "error"]
    assert mapped.counts["failed"] == 1

    on_file = client.map("file_info", [{}], data="timeseries.csv").wait(60)
    assert on_file.results().loc[0, "result.name"] == "timeseries.csv"


def test_a_sweep_can_be_cancelled_from_the_client(client: JobServerClient) -> None:
    sweep = client.sweep("sleepy", grid={"seconds": [60.0] * 5})
    client.get_job(sweep.jobs(status="queued")[0].id)  # it exists, queued or running
    sweep.cancel()
    sweep.wait(60)
    assert sweep.status == "cancelled"
    assert sweep.counts["cancelled"] == 5


async def test_the_async_client_makes_sweeps_too(live_server: Any) -> None:
    async with AsyncJobServerClient(live_server.base, live_server.token) as client:
        sweep = await client.sweep("power", grid={"x": [4]}, idempotency_key="async-1")
        again = await client.sweep("power", grid={"x": [4]}, idempotency_key="async-1")
        assert again.id == sweep.id
        table = await client.sweep_results(sweep.id)
        assert table["total"] == 1


@pytest.fixture
def shell(live_server: Any, monkeypatch: pytest.MonkeyPatch) -> InteractiveShell:
    monkeypatch.setenv(ENV_URL, live_server.base)
    monkeypatch.setenv(ENV_TOKEN, live_server.token)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "jupyter_jobserver")
    shell.magics_manager.registry["JobServerMagics"]._client = None
    return shell


def test_the_sweep_magic_shows_one_progress_bar_then_the_table(shell: InteractiveShell) -> None:
    with capture_output() as captured:
        sweep = shell.run_line_magic("jobserver", "sweep power x=1,2,3 n=1,2")
    assert isinstance(sweep, Sweep)
    assert sweep.size == 6 and sweep.status == "succeeded"
    texts = [o.data.get("text/plain", "") for o in captured.outputs]
    bars = [t for t in texts if re.match(r"(queued|running|succeeded) ", t)]
    assert bars and all("of 6 jobs" in t for t in bars)  # one bar over the whole sweep
    assert "6 of 6 jobs: 6 succeeded" in bars[-1]
    tables = [o.data["text/html"] for o in captured.outputs if "text/html" in o.data]
    assert any("<table" in t and "result" in t for t in tables)  # the results at the end
    frame = sweep.results()
    assert sorted(zip(frame["x"], frame["n"], frame["result"], strict=True)) == [
        (1, 1, 1.0),
        (1, 2, 1.0),
        (2, 1, 2.0),
        (2, 2, 4.0),
        (3, 1, 3.0),
        (3, 2, 9.0),
    ]


def test_the_sweep_magic_runs_on_datafiles_and_says_what_is_wrong(shell: InteractiveShell) -> None:
    with capture_output():
        sweep = shell.run_line_magic(
            "jobserver", "sweep file_info --datafile timeseries.csv,gauge.dat"
        )
    assert list(sweep.results()["datafile"]) == ["timeseries.csv", "gauge.dat"]
    with pytest.raises(UsageError, match=r"grid point x=1.0, n=9: parameter 'n' must be at most 5"):
        shell.run_line_magic("jobserver", "sweep power x=1 n=2,9")


def test_the_sweep_view_fills_in_counts_progress_table_and_plot(client: JobServerClient) -> None:
    sweep = client.sweep("power", grid={"x": [1, 2, 3, 4], "n": [2]})
    view = SweepView(sweep, client)
    try:
        ended = view.wait(60)
        assert ended.status == "succeeded"
        assert view.progress.value == 1.0
        assert view.progress_label.value == "4 of 4 done"
        assert "succeeded" in view.counts.value and " 4" in view.counts.value
        assert view.cancel_button.layout.display == "none"
        assert view.table.value.count("<tr>") == 5  # a header and a row per job
        assert "<td style='text-align:left'>16</td>" in view.table.value
        # one parameter varies and the result is a number: a plot of one against the other
        assert view.plot.layout.display is None
        points = re.findall(r'data-x="([^"]+)" data-y="([^"]+)"', view.plot.value)
        assert [(float(x), float(y)) for x, y in points] == [(1, 1), (2, 4), (3, 9), (4, 16)]
        assert ">x</text>" in view.plot.value
    finally:
        view.close()

    two = client.sweep("power", grid={"x": [1, 2], "n": [1, 2]})
    view = SweepView(two, client)
    try:
        view.wait(60)
        assert view.plot.layout.display == "none"  # two parameters vary: no plot
    finally:
        view.close()


def test_the_sweep_view_shows_failures_and_can_cancel(client: JobServerClient) -> None:
    failing = client.map("power", [{"x": 1}, {"x": -2}])
    view = SweepView(failing, client)
    try:
        assert view.wait(60).status == "failed"
        assert "x must not be negative" in view.table.value
    finally:
        view.close()
    slow = client.sweep("sleepy", grid={"seconds": [60.0] * 3})
    view = SweepView(slow, client)
    try:
        view.cancel_button.click()
        assert view.wait(60).status == "cancelled"
        assert "cancelled" in view.counts.value
    finally:
        view.close()
