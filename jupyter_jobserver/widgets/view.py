"""``JobView``: one job, followed live: status, progress, output as it comes, the result."""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets as widgets

from .. import display as show
from ..client import FINISHED, Job, JobServerClient
from .following import Following


class JobView(widgets.VBox):
    """Watches a job through its event stream (not by polling) and shows what it does.
    A job that has already ended is shown the same way: the stream replays its output.

    ``view.wait()`` blocks until the job has ended and returns it.
    """

    def __init__(
        self, job: Job | str, client: JobServerClient | None = None, follow: bool = True
    ) -> None:
        self.client = client or JobServerClient()
        self.job = job if isinstance(job, Job) else self.client.get_job(job)
        self.status = widgets.HTML()
        self.progress = widgets.FloatProgress(min=0.0, max=1.0, layout=widgets.Layout(width="20em"))
        self.progress_label = widgets.Label()
        # a scrolling box laid out from its end stays on the newest line as output comes
        # (and where the reader scrolled to, once they scroll up)
        self.output = widgets.Output(
            layout=widgets.Layout(
                max_height="24em",
                overflow="auto",
                border="1px solid #ddd",
                display="flex",
                flex_flow="column-reverse",
            )
        )
        self.result = widgets.Output()
        #: the files the job wrote, once it has ended: images inline, the others as links
        self.files = widgets.HTML()
        self.cancel_button = widgets.Button(
            description="Cancel", icon="stop", button_style="warning"
        )
        self.cancel_button.on_click(lambda _: self.cancel())
        super().__init__(
            [
                widgets.HBox([self.status, self.cancel_button]),
                widgets.HBox([self.progress, self.progress_label]),
                self.output,
                self.result,
                self.files,
            ]
        )
        self._done = threading.Event()
        self._thread: Following | None = None
        self._show_status()
        if not follow:
            self._finish(self.job.record)
        else:
            self._thread = Following(self.client, self._follow, f"jobview-{self.job.id[:8]}")
            self._thread.start()

    def wait(self, timeout: float | None = None) -> Job:
        """Block until the job has ended (and the view shows it); return the job."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"job {self.job.id} did not end within {timeout} s")
        return self.job

    def cancel(self) -> None:
        if not self.job.finished:
            self.client.cancel(self.job.id)

    def _follow(self, following: Following) -> None:
        try:
            for event in following.client.events(self.job.id):
                self.handle(event)
                if event["event"] == "end":
                    return
        except Exception as exc:  # the server went away: say so, stop following
            if not following.closed:
                self.status.value = f'<span style="color:#c62828">lost the job server: {exc}</span>'
            self._done.set()

    def close(self) -> None:
        """Stop following the job (its event stream is closed) and close the view."""
        if self._thread is not None:
            self._thread.close()
        super().close()

    def handle(self, event: dict[str, Any]) -> None:
        """Apply one event of the job's stream to the view."""
        kind = event["event"]
        if kind == "output":
            if event["stream"] == "stdout":
                self.output.append_stdout(event["text"])
            else:
                self.output.append_stderr(event["text"])
        elif kind == "progress":
            self._show_progress(event["progress"])
        elif kind == "status" and event.get("job"):
            self.job = Job(event["job"], self.client)
            self._show_status()
        elif kind == "end":
            self._finish(event.get("job") or self.client.get_job(self.job.id).record)

    def _finish(self, record: dict[str, Any]) -> None:
        self.job = Job(record, self.client)
        self._show_status()
        self.cancel_button.layout.display = "none"
        if record["status"] == "succeeded":
            self._show_progress({"fraction": 1.0, "message": ""})
            if record.get("result") is not None:
                self.result.append_display_data(self.job.result)
        elif record.get("error"):
            error = record["error"]
            self.result.append_stderr(f"{error['type']}: {error['message']}\n")
        if (record.get("provenance") or {}).get("files"):
            try:
                self.files.value = self.client.files_html(self.job)
            except Exception as exc:  # the files could not be read: say so, in the view
                self.files.value = f"<i>the job's files could not be shown: {exc}</i>"
        self._done.set()

    def _show_status(self) -> None:
        record = self.job.record
        name = record.get("script") or record.get("process")
        timing = f" in {record['time_sec']:.2f} s" if record.get("time_sec") is not None else ""
        badge = show.status_badge(record["status"])
        self.status.value = f"<b>{name}</b> <code>{record['id'][:8]}</code> {badge}{timing}"
        if record["status"] in FINISHED:
            self.cancel_button.layout.display = "none"
        if record.get("progress"):
            self._show_progress(record["progress"])

    def _show_progress(self, progress: dict[str, Any]) -> None:
        fraction = progress.get("fraction")
        if fraction is not None:
            self.progress.value = fraction
        message = progress.get("message") or ""
        self.progress_label.value = (
            f"{fraction:.0%} {message}".strip() if fraction is not None else message
        )
