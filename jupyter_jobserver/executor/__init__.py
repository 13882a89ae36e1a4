"""Executors: where job processes run."""

from .base import Executor, ExecutorListener, Outcome, Task
from .local import LocalExecutor

__all__ = ["Executor", "ExecutorListener", "LocalExecutor", "Outcome", "Task"]
