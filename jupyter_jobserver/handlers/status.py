"""The job server's status: its version and where jobs run (the executor, and for Dask
the cluster: scheduler address, workers, cores, dashboard link)."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from .._version import __version__
from .base import JobServerHandler

AUTH_RESOURCE = "jobserver"


class StatusHandler(JobServerHandler):
    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.only_arguments()
        self.send({"version": __version__, "executor": self.jobserver.jobs.executor.status()})
