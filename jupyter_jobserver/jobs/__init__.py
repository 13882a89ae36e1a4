"""Jobs: the operations on them, their life cycle, the rules they follow, their output."""

from .manager import JobService, JobSettings, job_filter

__all__ = ["JobService", "JobSettings", "job_filter"]
