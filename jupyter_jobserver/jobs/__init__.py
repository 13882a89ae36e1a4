"""Jobs: the operations on them, their life cycle, the rules they follow, their output."""

from .files import FolderJobFiles, JobFiles
from .lifecycle import JobLifecycle
from .logs import FolderJobLogs, JobLogs
from .manager import JobManager, job_filter
from .policy import JobPolicy
from .retention import JobRetention
from .sweeps import SweepService
from .transitions import TransitionPlugin, Transitions

__all__ = [
    "FolderJobFiles",
    "FolderJobLogs",
    "JobFiles",
    "JobLifecycle",
    "JobLogs",
    "JobManager",
    "JobPolicy",
    "JobRetention",
    "SweepService",
    "TransitionPlugin",
    "Transitions",
    "job_filter",
]
