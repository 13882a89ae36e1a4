"""REST handlers for scripts: what can be run, and with which parameters."""

from __future__ import annotations

from jupyter_server.auth.decorator import authorized
from tornado import web

from .base import JobServerHandler

AUTH_RESOURCE = "jobserver"


class ScriptsHandler(JobServerHandler):
    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self) -> None:
        registry = self.jobserver.registry
        await registry.ready()
        self.send({"scripts": [s.model() for s in registry.all()]})


class ScriptHandler(JobServerHandler):
    auth_resource = AUTH_RESOURCE

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        registry = self.jobserver.registry
        await registry.ready()
        self.send(registry.get(name).model())
