"""Executors for tests."""

from __future__ import annotations

from jupyter_jobserver.executor import LocalExecutor


class DiskApart(LocalExecutor):
    """The local executor, claiming to share no disk with the server: what a remote
    executor is handed, the local one runs."""

    shares_disk = False
