"""The local executor: warm worker processes on this machine."""

from .pool import LocalExecutor

__all__ = ["LocalExecutor"]
