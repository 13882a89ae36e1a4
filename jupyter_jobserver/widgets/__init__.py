"""Notebook widgets: a job form built from a script's schema, a live job view, a job list,
a live sweep view."""

from .form import JobForm
from .joblist import JobList
from .sweepview import SweepView
from .view import JobView

__all__ = ["JobForm", "JobList", "JobView", "SweepView"]
