"""``SweepView``: one sweep, followed live: counts by status, one progress bar, the
results table filling in as its jobs end, and a plot of the result against the one
parameter that varies (when the result is a number)."""

from __future__ import annotations

import html
import math
import threading
from typing import Any

import ipywidgets as widgets

from .. import display as show
from ..client import FINISHED, JobServerClient, Sweep
from .following import Following

#: rows of the table shown (the whole table is ``view.table``'s data and ``results()``)
SHOWN_ROWS = 200

PLOT_WIDTH, PLOT_HEIGHT, MARGIN = 360, 220, 40


class SweepView(widgets.VBox):
    """Watches a sweep through its event stream (not by polling). ``view.wait()`` blocks
    until every job of it has ended and returns the sweep."""

    def __init__(self, sweep: Sweep | str, client: JobServerClient | None = None) -> None:
        self.client = client or JobServerClient()
        self.sweep = sweep if isinstance(sweep, Sweep) else self.client.get_sweep(sweep)
        self.status = widgets.HTML()
        self.counts = widgets.HTML()
        self.progress = widgets.FloatProgress(min=0.0, max=1.0, layout=widgets.Layout(width="20em"))
        self.progress_label = widgets.Label()
        self.cancel_button = widgets.Button(
            description="Cancel", icon="stop", button_style="warning"
        )
        self.cancel_button.on_click(lambda _: self.cancel())
        self.table = widgets.HTML()
        self.plot = widgets.HTML(layout=widgets.Layout(display="none"))
        #: the results table as last read: ``{"columns": [...], "rows": [...]}``
        self.data: dict[str, Any] = {"columns": [], "rows": []}
        super().__init__(
            [
                widgets.HBox([self.status, self.cancel_button]),
                self.counts,
                widgets.HBox([self.progress, self.progress_label]),
                self.plot,
                self.table,
            ]
        )
        self._done = threading.Event()
        self._shown_done = -1
        self._show(self.sweep.record)
        self._thread = Following(self.client, self._follow, f"sweepview-{self.sweep.id[:8]}")
        self._thread.start()

    def wait(self, timeout: float | None = None) -> Sweep:
        """Block until every job has ended (and the view shows it); return the sweep."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"sweep {self.sweep.id} did not end within {timeout} s")
        return self.sweep

    def cancel(self) -> None:
        if not self.sweep.finished:
            self.client.cancel_sweep(self.sweep.id)

    def close(self) -> None:
        """Stop following the sweep and close the view."""
        self._thread.close()
        super().close()

    def _follow(self, following: Following) -> None:
        try:
            for record in Sweep(self.sweep.record, following.client).follow():
                self._show(record, following.client)
        except Exception as exc:  # the server went away: say so, stop following
            if not following.closed:
                self.status.value = (
                    f'<span style="color:#c62828">lost the job server: {html.escape(str(exc))}'
                    "</span>"
                )
        finally:
            self._done.set()

    def _show(self, record: dict[str, Any], client: JobServerClient | None = None) -> None:
        self.sweep = Sweep(record, self.client)
        badge = show.status_badge(record["status"])
        self.status.value = (
            f"<b>{html.escape(record['script'])}</b> sweep <code>{record['id'][:8]}</code> "
            f"{badge} {record['size']} jobs"
        )
        counts = record.get("counts") or {}
        self.counts.value = " ".join(
            f"{show.status_badge(status)} {n}" for status, n in counts.items() if n
        )
        progress = record.get("progress") or {}
        self.progress.value = progress.get("fraction") or 0.0
        self.progress_label.value = f"{progress.get('done', 0)} of {progress.get('total')} done"
        if record["status"] in FINISHED:
            self.cancel_button.layout.display = "none"
        done = progress.get("done", 0)
        if done != self._shown_done:  # the table changes only when jobs end
            self._shown_done = done
            self.data = (client or self.client).sweep_results(record["id"])
            self._show_table()

    def _show_table(self) -> None:
        columns, rows = self.data["columns"], self.data["rows"]
        shown = [c for c in columns if c != "job"]
        keep = [columns.index(c) for c in shown]
        cells = [[_cell(row[i]) for i in keep] for row in rows[:SHOWN_ROWS]]
        more = len(rows) - SHOWN_ROWS
        note = f"<p>and {more} more rows: <code>view.sweep.results()</code></p>" if more > 0 else ""
        self.table.value = show.table_html(shown, cells) + note
        plot = result_plot(columns, rows)
        self.plot.value = plot or ""
        self.plot.layout.display = None if plot else "none"


def _cell(value: Any) -> Any:
    return "" if value is None else value


def result_plot(columns: list[str], rows: list[list[Any]]) -> str | None:
    """An SVG plot of the result against the one parameter that varies, when the result
    is a number; ``None`` otherwise."""
    if "result" not in columns or "status" not in columns:
        return None
    parameters = columns[columns.index("job") + 1 : columns.index("status")]
    parameters = [p for p in parameters if p != "datafile"]
    varying = [p for p in parameters if len({repr(r[columns.index(p)]) for r in rows}) > 1]
    if len(varying) != 1:
        return None
    name = varying[0]
    x_at, y_at = columns.index(name), columns.index("result")
    points = sorted(
        (row[x_at], row[y_at]) for row in rows if _number(row[x_at]) and _number(row[y_at])
    )
    if not points:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)

    def sx(x: float) -> float:
        return MARGIN + (x - x0) / ((x1 - x0) or 1) * (PLOT_WIDTH - 2 * MARGIN)

    def sy(y: float) -> float:
        return PLOT_HEIGHT - MARGIN - (y - y0) / ((y1 - y0) or 1) * (PLOT_HEIGHT - 2 * MARGIN)

    line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    dots = "".join(
        f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" data-x="{x}" data-y="{y}"/>'
        for x, y in points
    )
    bottom, right = PLOT_HEIGHT - MARGIN, PLOT_WIDTH - MARGIN
    label = html.escape(name)
    return (
        f'<svg class="jobserver-sweep-plot" width="{PLOT_WIDTH}" height="{PLOT_HEIGHT}" '
        f'role="img" aria-label="result against {label}">'
        f'<line x1="{MARGIN}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="currentColor"/>'
        f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{bottom}" stroke="currentColor"/>'
        f'<polyline points="{line}" fill="none" stroke="#1976d2"/>'
        f'<g fill="#1976d2">{dots}</g>'
        f'<text x="{PLOT_WIDTH / 2}" y="{PLOT_HEIGHT - 8}" text-anchor="middle">{label}</text>'
        f'<text x="12" y="{PLOT_HEIGHT / 2}" transform="rotate(-90 12 {PLOT_HEIGHT / 2})" '
        'text-anchor="middle">result</text>'
        f'<text x="{MARGIN}" y="{bottom + 14}" text-anchor="middle">{x0:g}</text>'
        f'<text x="{right}" y="{bottom + 14}" text-anchor="middle">{x1:g}</text>'
        f'<text x="{MARGIN - 4}" y="{bottom}" text-anchor="end">{y0:g}</text>'
        f'<text x="{MARGIN - 4}" y="{MARGIN}" text-anchor="end">{y1:g}</text>'
        "</svg>"
    )


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
