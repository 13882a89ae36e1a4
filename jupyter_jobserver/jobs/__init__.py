"""Jobs: the operations on them, their life cycle, the rules they follow, their output."""

from .lifecycle import JobLifecycle
from .logs import FolderJobLogs, JobLogs
from .manager import JobManager, job_filter
from .policy import JobPolicy
from .sweeps import SweepService
from .transitions import TransitionPlugin, Transitions

__all__ = [
    "FolderJobLogs",
    "JobLifecycle",
    "JobLogs",
    "JobManager",
    "JobPolicy",
    "SweepService",
    "TransitionPlugin",
    "Transitions",
    "job_filter",
]
