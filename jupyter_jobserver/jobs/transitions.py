"""One hook for every change of a job's status.

The life cycle calls :meth:`Transitions.emit` at each change, once the change is stored;
whatever needs to know subscribes a :class:`TransitionPlugin` (as distributed's
``SchedulerPlugin.transition`` works) instead of editing the state machine: the event
streams today, Jupyter's event bus, and later pipelines, schedules and metrics.
"""

from __future__ import annotations

import logging
import pathlib
from typing import Any

from .events import JobEvents

#: the Jupyter event a job's status change is published as
TRANSITION_SCHEMA_ID = "https://events.jupyter.org/jupyter_jobserver/job_transition/v1"
TRANSITION_SCHEMA = pathlib.Path(__file__).parent / "job_transition.schema.json"


class TransitionPlugin:
    """Base class of what observes jobs' status changes."""

    def transition(
        self,
        job_id: str,
        start: str | None,
        finish: str,
        job: dict[str, Any] | None,
        record: dict[str, Any] | None,
    ) -> None:
        """Job ``job_id`` went from status ``start`` (``None`` for a new job) to
        ``finish`` (``"deleted"`` when it was deleted). ``job`` says whose job it is
        (owner, public, script); ``record`` is the whole record as stored, when at hand.
        Called on the event loop; it must not block."""


class Transitions:
    """The plugins, called in the order they were added; one that fails is logged and
    never stops the others or the change itself."""

    def __init__(self, log: logging.Logger | None = None) -> None:
        self.log = log or logging.getLogger(__name__)
        self._plugins: list[TransitionPlugin] = []

    def add(self, plugin: TransitionPlugin) -> None:
        self._plugins.append(plugin)

    def remove(self, plugin: TransitionPlugin) -> None:
        if plugin in self._plugins:
            self._plugins.remove(plugin)

    def emit(
        self,
        job_id: str,
        start: str | None,
        finish: str,
        job: dict[str, Any] | None,
        record: dict[str, Any] | None = None,
    ) -> None:
        for plugin in self._plugins:
            try:
                plugin.transition(job_id, start, finish, job, record)
            except Exception:
                self.log.exception("jobserver: %s failed on a job transition", plugin)


class EventStreams(TransitionPlugin):
    """Status changes into the in-process hub the event streams and waiters follow."""

    def __init__(self, events: JobEvents) -> None:
        self.events = events

    def transition(
        self,
        job_id: str,
        start: str | None,
        finish: str,
        job: dict[str, Any] | None,
        record: dict[str, Any] | None,
    ) -> None:
        event: dict[str, Any] = {
            "event": "deleted" if finish == "deleted" else "status",
            "status": finish,
        }
        if job is not None:
            event["owner"] = job.get("owner")
            event["public"] = bool(job.get("public"))
            event["script"] = job.get("script")
            if job.get("sweep"):
                event["sweep"] = job["sweep"]
        if record is not None:
            event["job"] = record
        self.events.publish(job_id, event)


class JupyterEvents(TransitionPlugin):
    """Status changes as Jupyter events (``jupyter_events``), so that other server
    extensions, and JupyterLab through ``/api/events/subscribe``, can listen."""

    def __init__(self, event_logger: Any) -> None:
        self.event_logger = event_logger
        if TRANSITION_SCHEMA_ID not in event_logger.schemas.schema_ids:
            event_logger.register_event_schema(TRANSITION_SCHEMA)

    def transition(
        self,
        job_id: str,
        start: str | None,
        finish: str,
        job: dict[str, Any] | None,
        record: dict[str, Any] | None,
    ) -> None:
        job = job or {}
        self.event_logger.emit(
            schema_id=TRANSITION_SCHEMA_ID,
            data={
                "job_id": job_id,
                "start": start,
                "finish": finish,
                "script": job.get("script"),
                "owner": job.get("owner"),
                "public": bool(job.get("public")),
            },
        )
