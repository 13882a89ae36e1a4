"""``JobList``: a table of your jobs that keeps itself up to date."""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as widgets

from .. import display as show
from ..client import FINISHED, Job, JobServerClient
from ..errors import JobServerError
from .following import Following
from .view import JobView


class JobList(widgets.VBox):
    """Your newest jobs with status and times, and buttons to view, cancel and rerun them.

    It refreshes when a job changes, as the server's event stream says (no polling);
    ``refresh()`` does it at once.
    """

    HEADERS = ["job", "script", "status", "created", "time", ""]

    def __init__(
        self, client: JobServerClient | None = None, limit: int = 20, follow: bool = True
    ) -> None:
        self.client = client or JobServerClient()
        self.limit = limit
        self.table = widgets.GridBox(
            layout=widgets.Layout(
                grid_template_columns="6em 10em 7em 12em 5em auto", grid_gap="2px 8px"
            )
        )
        self.detail = widgets.VBox()
        self.summary = widgets.HTML()
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        super().__init__(
            [widgets.HBox([self.summary, self.refresh_button]), self.table, self.detail]
        )
        self.jobs: list[Job] = []
        self.changed = threading.Event()
        self._thread: Following | None = None
        self.refresh()
        if follow:
            self._thread = Following(self.client, self._watch, "joblist")
            self._thread.start()

    def refresh(self) -> None:
        jobs, total = self.client.jobs(mine=True, limit=self.limit)
        self.jobs = jobs
        self.summary.value = f"{len(jobs)} of {total} job(s)"
        cells: list[widgets.Widget] = [widgets.HTML(f"<b>{h}</b>") for h in self.HEADERS]
        for job in jobs:
            record = job.record
            time_text = "" if record["time_sec"] is None else f"{record['time_sec']:.2f} s"
            cells += [
                widgets.HTML(f"<code>{record['id'][:8]}</code>"),
                widgets.Label(str(record["script"] or record["process"])),
                widgets.HTML(show.status_badge(record["status"])),
                widgets.Label(record["created"][:19].replace("T", " ")),
                widgets.Label(time_text),
                self._buttons(job),
            ]
        self.table.children = cells

    def _buttons(self, job: Job) -> widgets.HBox:
        view = widgets.Button(description="View", layout=widgets.Layout(width="5em"))
        view.on_click(lambda _: self.show(job.id))
        cancel = widgets.Button(
            description="Cancel",
            layout=widgets.Layout(width="5.5em"),
            disabled=job.status in FINISHED,
        )
        cancel.on_click(lambda _: self._act(lambda: self.client.cancel(job.id)))
        rerun = widgets.Button(description="Rerun", layout=widgets.Layout(width="5em"))
        rerun.on_click(lambda _: self._act(lambda: self.show(self.client.rerun(job.id).id)))
        return widgets.HBox([view, cancel, rerun])

    def show(self, job_id: str) -> JobView:
        view = JobView(job_id, self.client)
        for shown in self.detail.children:
            shown.close()  # the view it replaces stops following its job
        self.detail.children = [view]
        return view

    def _act(self, action: Any) -> None:
        try:
            action()
        except JobServerError as exc:
            self.summary.value = f'<span style="color:#c62828">{exc.message}</span>'
        self.refresh()

    def _watch(self, following: Following) -> None:
        try:
            for _ in following.client.watch():
                if following.closed:
                    return
                self.refresh()
                self.changed.set()
        except Exception:
            if not following.closed:
                self.summary.value = '<span style="color:#c62828">lost the job server</span>'

    def close(self) -> None:
        """Stop following (the event stream is closed, its thread ends) and close."""
        if self._thread is not None:
            self._thread.close()
        for shown in self.detail.children:
            shown.close()
        super().close()
