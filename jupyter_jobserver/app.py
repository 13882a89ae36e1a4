"""The Jupyter server extension: configuration, services and their life cycle.

``pip install`` enables it for every Jupyter server (``jupyter lab``, ``jupyter server``);
``jupyter jobserver`` runs a server with it on its own. With no configuration at all it
keeps jobs in an SQLite file in Jupyter's data directory and runs them in warm local
workers, one per core.

Each service is a configurable of its own (``c.JobPolicy.max_timeout``,
``c.DataFiles.data_dir``, ...), built here with this app as its parent. The settings it
owns that were once the app's still work as ``c.JobServerApp.<name>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.serverapp import ServerApp
from traitlets import Bool, Set, Type, Unicode, default
from traitlets.config import Config

from ._version import __version__
from .data.bindings import DataBindings
from .data.datafiles import DataFiles
from .data.documents import DataDocuments
from .executor import DaskExecutor, Executor, LocalExecutor
from .handlers import default_handlers
from .jobs import (
    FolderJobFiles,
    FolderJobLogs,
    JobFiles,
    JobLifecycle,
    JobLogs,
    JobManager,
    JobPolicy,
    JobRetention,
    SweepService,
)
from .jobs.transitions import JupyterEvents
from .scripts import ScriptRegistry
from .store import SQLiteStore, Store, StoreRunner
from .users import User
from .vocabulary import API_PREFIX, ENV_TOKEN, ENV_URL

#: settings a service owns that are also read as ``JobServerApp.<name>``
MOVED_SETTINGS: dict[str, tuple[str, ...]] = {
    "ScriptRegistry": (
        "scripts",
        "script_dirs",
        "entry_point_scripts",
        "exclude_scripts",
        "preload_scripts",
    ),
    "DataFiles": (
        "data_dir",
        "datafile_extensions",
        "max_datafile_size",
        "datafile_quota",
        "max_convert_size",
    ),
    "DataDocuments": ("max_document_size",),
    "JobPolicy": (
        "default_timeout",
        "max_timeout",
        "max_active_jobs_per_user",
        "max_result_size",
        "allow_eval",
    ),
    "JobLifecycle": ("requeue_on_restart",),
    "LocalExecutor": ("workers",),
}


class JobServerApp(ExtensionApp):
    """Run shared algorithms as reproducible jobs from Jupyter."""

    name = "jobserver"
    version = __version__
    description = __doc__
    extension_url = f"/{API_PREFIX}/scripts"
    load_other_extensions = True

    subcommands = {
        "copy": (
            "jupyter_jobserver.copy_command.CopyApp",
            "Copy jobs, data documents, sweeps, output and files from one store to another.",
        ),
    }

    classes = [
        ScriptRegistry,
        DataFiles,
        DataDocuments,
        JobPolicy,
        JobLifecycle,
        JobRetention,
        SweepService,
        FolderJobLogs,
        FolderJobFiles,
        SQLiteStore,
        LocalExecutor,
        DaskExecutor,
    ]

    # --- where things are ------------------------------------------------------------

    state_dir = Unicode(
        help="Folder for the job server's own files: the SQLite store and job output.",
    ).tag(config=True)

    db_url = Unicode(
        help=(
            "Where job records live: a path or sqlite:/// URL for the embedded store "
            "(default: jobserver.sqlite in state_dir)."
        ),
    ).tag(config=True)

    jobs_dir = Unicode(
        help="Folder that holds each job's captured output (default: jobs/ in state_dir).",
    ).tag(config=True)

    store_class = Type(
        default_value=SQLiteStore,
        klass=Store,
        help="The store implementation (jobs and data documents).",
    ).tag(config=True)

    logs_class = Type(
        default_value=FolderJobLogs,
        klass=JobLogs,
        help="Where job output is kept (default: a folder per job in jobs_dir).",
    ).tag(config=True)

    files_class = Type(
        default_value=FolderJobFiles,
        klass=JobFiles,
        help="Where the files jobs write are kept (default: each job's folder in jobs_dir).",
    ).tag(config=True)

    executor_class = Type(
        default_value=LocalExecutor,
        klass=Executor,
        help="The executor implementation (where processes run).",
    ).tag(config=True)

    # --- who may do what -------------------------------------------------------------

    single_user = Bool(
        allow_none=True,
        default_value=None,
        help=(
            "Treat everyone who is let in as the server's owner (server_owner), as a "
            "personal Jupyter server does. Default: on, unless the identity provider names "
            "users (JupyterHub and other multi-user set-ups)."
        ),
    ).tag(config=True)

    server_owner = Unicode(
        help="Owner of the jobs of a single-user server (default: the account running it).",
    ).tag(config=True)

    admin_users = Set(
        Unicode(),
        help="Users who may run eval jobs and see and manage everyone's jobs "
        "(default: the owner of a single-user server).",
    ).tag(config=True)

    @property
    def server(self) -> ServerApp:
        """The Jupyter server this extension runs in (set before any setting is read)."""
        assert self.serverapp is not None, "the extension is not loaded in a server"
        return self.serverapp

    @default("state_dir")
    def _default_state_dir(self) -> str:
        return os.path.join(jupyter_data_dir(), "jobserver")

    @default("db_url")
    def _default_db_url(self) -> str:
        return os.path.join(self.state_dir, "jobserver.sqlite")

    @default("jobs_dir")
    def _default_jobs_dir(self) -> str:
        return os.path.join(self.state_dir, "jobs")

    @default("server_owner")
    def _default_server_owner(self) -> str:
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "owner"

    def _load_config(self, cfg: Config, *args: Any, **kwargs: Any) -> None:
        """Read each moved setting given as ``JobServerApp.<name>`` as its service's own
        (a value given to the service itself wins)."""
        own = cfg.get(self.__class__.__name__)
        if isinstance(own, Config):
            for service, names in MOVED_SETTINGS.items():
                for name in names:
                    if name in own:
                        value = own.pop(name)
                        section = cfg[service]
                        if name not in section:
                            section[name] = value
        super()._load_config(cfg, *args, **kwargs)

    # --- the services ----------------------------------------------------------------

    def initialize_settings(self) -> None:
        """Build the services; nothing starts running until the server does."""
        if self.single_user is None:
            self.single_user = _names_no_users(self.server.identity_provider)
        if not self.admin_users and self.single_user:
            self.admin_users = {self.server_owner}
        self.store = store_class(self)(parent=self, url=self.db_url)
        self.store_runner = StoreRunner(self.store)
        self.logs = self.logs_class(parent=self, root=self.jobs_dir)
        self._publish: Any = None
        if callable(getattr(self.store, "collection", None)) and self.logs_class is FolderJobLogs:
            # a shared store keeps output too, so every server sharing it serves it
            from .jobs.mongo_logs import MongoJobLogs, PublishOutput

            self.logs = MongoJobLogs(parent=self, root=self.jobs_dir, store=self.store)
            self._publish = PublishOutput(self.logs)
        self.files = self.files_class(parent=self, root=self.jobs_dir)
        self._publish_files: Any = None
        if self._publish is not None and self.files_class is FolderJobFiles:
            # and the files jobs write, for the same reason
            from .jobs.mongo_files import MongoJobFiles
            from .jobs.mongo_logs import PublishOutput as PublishFiles

            self.files = MongoJobFiles(parent=self, root=self.jobs_dir, store=self.store)
            self._publish_files = PublishFiles(self.files)
        self.registry = ScriptRegistry(parent=self)
        self.executor = self.executor_class(parent=self, log=self.log)
        self.executor.preload(self.registry.modules())
        self.datafiles = DataFiles(parent=self, per_user=not self.single_user)
        if not self.datafiles.data_dir:
            self.datafiles.data_dir = os.path.join(self.server.root_dir, "data")
        if self.datafiles.per_user and not self.datafiles.user_dirs:
            # outside the Jupyter root: the Contents API cannot reach others' files
            self.datafiles.user_dirs = os.path.join(self.state_dir, "datafiles")
        self.documents = DataDocuments(self.store_runner, parent=self)
        self.jobs = JobManager(
            parent=self,
            store=self.store_runner,
            executor=self.executor,
            registry=self.registry,
            logs=self.logs,
            files=self.files,
            data=DataBindings(self.datafiles, self.documents),
        )
        self.leases: Any = None
        if self._publish is not None:
            from .jobs.leases import Leases
            from .jobs.store_follower import StoreFollower

            self.jobs.lifecycle.transitions.add(self._publish)
            if self._publish_files is not None:
                self.jobs.lifecycle.transitions.add(self._publish_files)
            from .jobs.admission import ReleaseSlots

            self.jobs.lifecycle.transitions.add(ReleaseSlots(self.store, self.log))
            self.leases = Leases(self._publish.logs.store, self.jobs.lifecycle, parent=self)
            self.jobs.lifecycle.transitions.add(self.leases)
            self.jobs.lifecycle.held_elsewhere = self.leases.held_elsewhere
            self.follower = StoreFollower(self.store, self.jobs.lifecycle, parent=self)
            self.jobs.lifecycle.transitions.add(self.follower)
        self.sweeps = SweepService(parent=self, jobs=self.jobs)
        event_logger = getattr(self.server, "event_logger", None)
        if event_logger is not None:
            self.jobs.lifecycle.transitions.add(JupyterEvents(event_logger))
        self._started: asyncio.Task[None] | None = None
        self._describing: asyncio.Future[None] | None = None
        problems = setting_problems(self)
        if problems:
            # a setting that cannot be honoured is never taken silently: stop, and say why
            for problem in problems:
                self.log.critical("jobserver: %s", problem)
            self.exit(1)

    def initialize_handlers(self) -> None:
        self.handlers.extend(default_handlers)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        """Start the workers, describe the scripts, reconcile the store."""
        if self._started is None:
            self._started = asyncio.ensure_future(self._start())
        await self._started

    async def _start(self) -> None:
        try:
            await self._start_services()
        except Exception as exc:
            # the rest of Jupyter goes on; every job server request answers 503 with why
            reason = f"the job server could not start: {exc}"
            self.log.error("jobserver: %s", reason, exc_info=exc)
            self.jobs.unavailable(reason)
            raise

    async def _start_services(self) -> None:
        os.makedirs(self.state_dir, exist_ok=True)
        os.makedirs(self.jobs_dir, exist_ok=True)
        os.makedirs(self.datafiles.data_dir, exist_ok=True)
        await asyncio.to_thread(self.store.open)  # the store's lock first: then it is ours
        if self._publish is not None:
            await asyncio.to_thread(self._publish.logs.create_indexes)
        if self._publish_files is not None:
            await asyncio.to_thread(self._publish_files.logs.create_indexes)
        removed = await asyncio.to_thread(self.datafiles.remove_stale_uploads)
        if removed:
            self.log.info("jobserver: removed %d upload(s) cut off by a crash", removed)
        await self.executor.start(self.jobs.lifecycle, self.logs, self.files)
        connections = self.executor.connections()
        await self.registry.load(self.executor.describe, self.server.root_dir)
        self._describing = asyncio.ensure_future(self._describe_on_reconnect(connections))
        if self.leases is not None:  # first: the jobs of servers gone are failed as lost
            await self.leases.start()
        await self.jobs.start()
        if self.leases is not None:
            await self.follower.start()
        self._hand_to_kernels()
        status = self.executor.status()
        self.log.info(
            "jobserver %s | %d script(s), %s worker(s), store %s",
            __version__,
            len(self.registry.all()),
            status.get("workers") or "no",
            self.store.where(),
        )

    async def _describe_on_reconnect(self, seen: int) -> None:
        """Describe the scripts again each time the executor connects anew (a cluster
        unreachable at start-up, or back with other workers): its scripts appear then,
        without a restart."""
        while True:
            seen = await self.executor.reconnected(seen)
            self.log.info("jobserver: the executor connected again; describing the scripts")
            try:
                await self.registry.load(self.executor.describe, self.server.root_dir)
            except Exception:  # the scripts stay as they were; the next connection tries again
                self.log.exception("jobserver: describing the scripts again failed")

    def _hand_to_kernels(self) -> None:
        """Kernels this server starts inherit its environment: tell them where the job
        server is, so the client, widgets and magics need no configuration."""
        self._environ_before = {name: os.environ.get(name) for name in (ENV_URL, ENV_TOKEN)}
        os.environ[ENV_URL] = self.server.connection_url
        os.environ[ENV_TOKEN] = self.server.identity_provider.token or ""

    async def stop_extension(self) -> None:
        """Stop the workers and close the store."""
        for name, value in getattr(self, "_environ_before", {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if self._started is not None:
            with contextlib.suppress(Exception):  # a failed start is logged already
                await self._started
        if self._describing is not None:
            self._describing.cancel()
            with contextlib.suppress(BaseException):
                await self._describing
        await self.jobs.stop()
        if self._publish is not None:
            await self._publish.drain()
        if self._publish_files is not None:
            await self._publish_files.drain()
        if self.leases is not None:
            await self.follower.stop()
            await self.leases.stop()
        await asyncio.to_thread(self.store_runner.close)

    def user_for(self, identity: Any) -> User:
        """The service-level user for Jupyter's authenticated identity."""
        name = self.server_owner if self.single_user else identity.username
        return User(name=name, admin=name in self.admin_users)


def store_class(app: JobServerApp) -> type[Store]:
    """The store to build: ``store_class``, except that a ``mongodb://`` (or
    ``mongodb+srv://``) ``db_url`` with the default class means the MongoDB store."""
    if app.store_class is SQLiteStore and app.db_url.startswith(("mongodb://", "mongodb+srv://")):
        from .store.mongo import MongoStore  # pymongo is needed only then

        return MongoStore
    return app.store_class


def setting_problems(app: JobServerApp) -> list[str]:
    """What in the configuration the job server cannot honour, each naming its setting
    where it is defined. Checked once at start-up, once the services are built (a new
    check is one more ``if`` here)."""
    problems = []
    scheme, sep, _ = app.db_url.partition("://")
    if sep and isinstance(app.store, SQLiteStore) and scheme != "sqlite":
        problems.append(
            f"JobServerApp.db_url is a {scheme}:// URL; the store takes a path, a "
            "sqlite:/// URL, or a mongodb:// or mongodb+srv:// URL for MongoDB"
        )
    if app.store.shared and getattr(app.store, "uri", None) == "" and not sep:
        problems.append(
            f"{type(app.store).__name__} needs a connection string: set "
            f"{type(app.store).__name__}.uri or give JobServerApp.db_url a mongodb:// URL"
        )
    for folder in app.registry.script_dirs:
        path = os.path.join(app.server.root_dir, folder)
        if not os.path.isdir(path):
            what = "is not a folder" if os.path.exists(path) else "does not exist"
            problems.append(f"ScriptRegistry.script_dirs: {path} {what}")
    counts: list[tuple[Any, str]] = [
        (app.datafiles, "max_datafile_size"),
        (app.datafiles, "datafile_quota"),
        (app.jobs.policy, "max_active_jobs_per_user"),
    ]
    if app.executor.has_trait("workers"):
        counts.append((app.executor, "workers"))
    for owner, name in counts:
        value = getattr(owner, name)
        if value < 0:
            problems.append(f"{type(owner).__name__}.{name} must be 0 or more, not {value}")
    for name in ("default_timeout", "max_timeout"):
        if getattr(app.jobs.policy, name) < 0:
            problems.append(f"JobPolicy.{name} must be 0 (no limit) or more seconds")
    return problems


def _names_no_users(identity_provider: Any) -> bool:
    """Jupyter's own identity providers give each token login a random name."""
    from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider

    return type(identity_provider) in (IdentityProvider, PasswordIdentityProvider) or (
        type(identity_provider).__name__ == "LegacyIdentityProvider"
    )


main = launch_new_instance = JobServerApp.launch_instance
