"""URL routes of the job server's REST API (relative: Jupyter adds its base URL)."""

from __future__ import annotations

from ..vocabulary import API_PREFIX
from .data import DataDocumentHandler, DataListHandler
from .datafiles import DataFileHandler, DataFilesHandler
from .jobs import (
    JobActionHandler,
    JobEventsHandler,
    JobFileHandler,
    JobFilesHandler,
    JobHandler,
    JobOutputHandler,
    JobQueryHandler,
    JobsEventsHandler,
    JobsHandler,
)
from .scripts import ScriptHandler, ScriptsHandler
from .status import StatusHandler
from .sweeps import (
    SweepActionHandler,
    SweepEventsHandler,
    SweepHandler,
    SweepJobsHandler,
    SweepResultsHandler,
    SweepsHandler,
)

API = rf"/{API_PREFIX}"
_ID = r"(?P<job_id>[^/]+)"
_SWEEP = r"(?P<sweep_id>[^/]+)"

default_handlers = [
    (rf"{API}/status", StatusHandler),
    (rf"{API}/scripts/?", ScriptsHandler),
    (rf"{API}/scripts/(?P<name>[^/]+)", ScriptHandler),
    (rf"{API}/jobs/?", JobsHandler),
    (rf"{API}/jobs/query", JobQueryHandler),
    (rf"{API}/jobs/events", JobsEventsHandler),
    (rf"{API}/jobs/{_ID}/output/(?P<stream>[^/]+)", JobOutputHandler),
    (rf"{API}/jobs/{_ID}/events", JobEventsHandler),
    (rf"{API}/jobs/{_ID}/files/?", JobFilesHandler),
    (rf"{API}/jobs/{_ID}/files/(?P<path>.+)", JobFileHandler),
    (rf"{API}/jobs/{_ID}/(?P<action>[^/]+)", JobActionHandler),
    (rf"{API}/jobs/{_ID}", JobHandler),
    (rf"{API}/sweeps/?", SweepsHandler),
    (rf"{API}/sweeps/{_SWEEP}/jobs", SweepJobsHandler),
    (rf"{API}/sweeps/{_SWEEP}/results", SweepResultsHandler),
    (rf"{API}/sweeps/{_SWEEP}/events", SweepEventsHandler),
    (rf"{API}/sweeps/{_SWEEP}/(?P<action>[^/]+)", SweepActionHandler),
    (rf"{API}/sweeps/{_SWEEP}", SweepHandler),
    (rf"{API}/datafiles/?", DataFilesHandler),
    (rf"{API}/datafiles/(?P<name>[^/]+)", DataFileHandler),
    (rf"{API}/data/?", DataListHandler),
    (rf"{API}/data/(?P<data_id>[^/]+)", DataDocumentHandler),
]
