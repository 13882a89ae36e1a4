"""The Jupyter server extension: configuration, services and their life cycle.

``pip install`` enables it for every Jupyter server (``jupyter lab``, ``jupyter server``);
``jupyter jobserver`` runs a server with it on its own. With no configuration at all it
keeps jobs in an SQLite file in Jupyter's data directory and runs them in warm local
workers, one per core.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import getpass
import os
from typing import IO, Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from jupyter_server.serverapp import ServerApp
from traitlets import Bool, Dict, Float, Int, List, Set, Type, Unicode, default

from ._version import __version__
from .bindings import DataBindings
from .client import ENV_TOKEN, ENV_URL
from .datafiles import DataFiles
from .documents import DataDocuments
from .events import JobEvents
from .executor import Executor, LocalExecutor
from .handlers import default_handlers
from .jobs import JobService, JobSettings
from .scripts import ScriptRegistry, file_scripts, function_references
from .store import SQLiteStore, Store, StoreRunner
from .users import User


class JobServerApp(ExtensionApp):
    """Run shared algorithms as reproducible jobs from Jupyter."""

    name = "jobserver"
    version = __version__
    description = __doc__
    extension_url = "/jobserver/api/scripts"
    load_other_extensions = True

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

    executor_class = Type(
        default_value=LocalExecutor,
        klass=Executor,
        help="The executor implementation (where processes run).",
    ).tag(config=True)

    workers = Int(
        0,
        help="Warm worker processes of the local executor (0: one per core).",
    ).tag(config=True)

    # --- scripts ---------------------------------------------------------------------

    scripts = Dict(
        help=(
            "Scripts to offer, by name: 'package.module:function' for a Python function, or "
            "a file script spec {'file': 'path', 'parameters': {...}, ...} (a relative path "
            "is relative to the Jupyter root). They add to (and override) those registered "
            "by installed packages."
        ),
    ).tag(config=True)

    script_dirs = List(
        Unicode(),
        help="Folders of file scripts: each '<name>.json' spec with its executable beside it "
        "is offered as script <name> (a relative folder is relative to the Jupyter root).",
    ).tag(config=True)

    entry_point_scripts = Bool(
        True,
        help="Offer the scripts that installed packages register (entry-point group "
        "jupyter_jobserver.scripts), including this package's examples.",
    ).tag(config=True)

    exclude_scripts = List(
        Unicode(),
        help="Names (or glob patterns) of scripts not to offer.",
    ).tag(config=True)

    preload_scripts = Bool(
        True,
        help="Import every function script's module when a worker starts, so even the "
        "first job of a script starts in milliseconds.",
    ).tag(config=True)

    # --- data ------------------------------------------------------------------------

    data_dir = Unicode(
        help="The datafile folder (default: data/ under the Jupyter root, so files put there "
        "in JupyterLab's file browser are datafiles too).",
    ).tag(config=True)

    datafile_extensions = List(
        Unicode(),
        default_value=["csv", "tsv", "dat", "txt", "json"],
        help="Extensions of the files in the data folder that are datafiles.",
    ).tag(config=True)

    max_datafile_size = Int(
        4 << 30,
        help="Largest datafile an upload may create, in bytes (0: no limit); larger "
        "uploads are refused with 413.",
    ).tag(config=True)

    datafile_quota = Int(
        0,
        help="Most bytes the datafiles of one folder may take together (0: no quota); an "
        "upload that would go over is refused with 413.",
    ).tag(config=True)

    max_convert_size = Int(
        64 << 20,
        help="Largest datafile converted on request (?format=csv|json|html|txt), in bytes.",
    ).tag(config=True)

    max_document_size = Int(
        64 << 20,
        help="Largest stored data document, in bytes of JSON.",
    ).tag(config=True)

    # --- limits and defaults ---------------------------------------------------------

    default_timeout = Float(
        0.0,
        help="Seconds a job may run when it does not ask for a timeout (0: no limit).",
    ).tag(config=True)

    max_timeout = Float(
        0.0,
        help="The longest timeout a job may ask for, in seconds (0: no limit).",
    ).tag(config=True)

    max_active_jobs_per_user = Int(
        0,
        help="Jobs one user may have queued or running at once (0: no limit); "
        "more are refused with 429.",
    ).tag(config=True)

    max_result_size = Int(
        64 << 20,
        help="Largest job result, in bytes of JSON; a larger one fails the job with a "
        "message saying so.",
    ).tag(config=True)

    requeue_on_restart = Bool(
        True,
        help="Queue again, at start-up, jobs that were queued when the server stopped "
        "(otherwise they are failed). Jobs that were running are always failed.",
    ).tag(config=True)

    # --- who may do what -------------------------------------------------------------

    allow_eval = Bool(
        False,
        help="Allow eval jobs (raw Python code) for admin_users. They run in a worker, "
        "never in the server, but can do anything the server's account can.",
    ).tag(config=True)

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

    @default("data_dir")
    def _default_data_dir(self) -> str:
        return os.path.join(self.server.root_dir, "data")

    @default("server_owner")
    def _default_server_owner(self) -> str:
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "owner"

    # --- the services ----------------------------------------------------------------

    def initialize_settings(self) -> None:
        """Build the services; nothing starts running until the server does."""
        problems = setting_problems(self)
        if problems:
            # a setting that cannot be honoured is never taken silently: stop, and say why
            for problem in problems:
                self.log.critical("jobserver: %s", problem)
            self.exit(1)
        if self.single_user is None:
            self.single_user = _names_no_users(self.server.identity_provider)
        if not self.admin_users and self.single_user:
            self.admin_users = {self.server_owner}
        self.store = self.store_class(parent=self, url=self.db_url)
        self.store_runner = StoreRunner(self.store)
        self._references = function_references(
            self.scripts, entry_points=self.entry_point_scripts, exclude=self.exclude_scripts
        )
        executor_kwargs: dict[str, Any] = {"parent": self, "log": self.log}
        if self.workers:
            executor_kwargs["workers"] = self.workers
        self.executor = self.executor_class(**executor_kwargs)
        if self.preload_scripts and isinstance(self.executor, LocalExecutor):
            modules = {ref.partition(":")[0] for ref, _ in self._references.values()}
            self.executor.preload_modules = sorted(set(self.executor.preload_modules) | modules)
        self.datafiles = DataFiles(
            self.data_dir,
            self.datafile_extensions,
            max_file_size=self.max_datafile_size,
            quota=self.datafile_quota,
            max_convert_size=self.max_convert_size,
            per_user=not self.single_user,
            log=self.log,
        )
        self.documents = DataDocuments(self.store_runner, max_size=self.max_document_size)
        self.events = JobEvents()
        self.registry = ScriptRegistry(log=self.log)
        self.jobs = JobService(
            store=self.store_runner,
            executor=self.executor,
            registry=self.registry,
            jobs_dir=self.jobs_dir,
            settings=JobSettings(
                default_timeout=self.default_timeout or None,
                max_timeout=self.max_timeout or None,
                max_active_jobs_per_user=self.max_active_jobs_per_user,
                max_result_bytes=self.max_result_size,
                requeue_on_restart=self.requeue_on_restart,
                allow_eval=self.allow_eval,
            ),
            events=self.events,
            data=DataBindings(self.datafiles, self.documents),
            log=self.log,
        )
        self._started: asyncio.Task[None] | None = None

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
        self._lock = await asyncio.to_thread(hold_lock, os.path.join(self.state_dir, LOCK_FILE))
        os.makedirs(self.jobs_dir, exist_ok=True)
        os.makedirs(self.data_dir, exist_ok=True)
        removed = await asyncio.to_thread(self.datafiles.remove_stale_uploads)
        if removed:
            self.log.info("jobserver: removed %d upload(s) cut off by a crash", removed)
        await asyncio.to_thread(self.store.open)
        await self.executor.start(self.jobs)
        references = {name: ref for name, (ref, _) in self._references.items()}
        files, broken = await asyncio.to_thread(
            file_scripts,
            self.scripts,
            self.script_dirs,
            self.server.root_dir,
            self.exclude_scripts,
        )
        sources = {name: source for name, (_, source) in self._references.items()}
        try:
            descriptions = await self.executor.describe(references)
        except Exception as exc:
            self.registry.fail(str(exc), references, files, sources, broken)
        else:
            self.registry.fill({**descriptions, **files}, sources, broken)
        await self.jobs.start()
        self._hand_to_kernels()
        self.log.info(
            "jobserver %s | %d script(s), %d worker(s), store %s",
            __version__,
            len(self.registry.all()),
            getattr(self.executor, "worker_count", 0),
            self.db_url,
        )

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
        await self.jobs.stop()
        await asyncio.to_thread(self.store_runner.close)
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.close()

    def user_for(self, identity: Any) -> User:
        """The service-level user for Jupyter's authenticated identity."""
        name = self.server_owner if self.single_user else identity.username
        return User(name=name, admin=name in self.admin_users)


def setting_problems(app: JobServerApp) -> list[str]:
    """What in the configuration the job server cannot honour, each naming its setting.
    Checked once at start-up (a new check is one more ``if`` here)."""
    problems = []
    scheme, sep, _ = app.db_url.partition("://")
    if sep and issubclass(app.store_class, SQLiteStore) and scheme != "sqlite":
        if scheme.startswith("mongodb"):
            problems.append(
                f"JobServerApp.db_url is a {scheme}:// URL, but a MongoDB store is not "
                "supported in this version; give a path or sqlite:/// URL (or leave it unset "
                "for jobserver.sqlite in JobServerApp.state_dir)"
            )
        else:
            problems.append(
                f"JobServerApp.db_url is a {scheme}:// URL; the store takes a path or a "
                "sqlite:/// URL"
            )
    for folder in app.script_dirs:
        path = os.path.join(app.server.root_dir, folder)
        if not os.path.isdir(path):
            what = "is not a folder" if os.path.exists(path) else "does not exist"
            problems.append(f"JobServerApp.script_dirs: {path} {what}")
    for name in ("workers", "max_datafile_size", "datafile_quota", "max_active_jobs_per_user"):
        if getattr(app, name) < 0:
            problems.append(f"JobServerApp.{name} must be 0 or more, not {getattr(app, name)}")
    for name in ("default_timeout", "max_timeout"):
        if getattr(app, name) < 0:
            problems.append(f"JobServerApp.{name} must be 0 (no limit) or more seconds")
    return problems


def _names_no_users(identity_provider: Any) -> bool:
    """Jupyter's own identity providers give each token login a random name."""
    from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider

    return type(identity_provider) in (IdentityProvider, PasswordIdentityProvider) or (
        type(identity_provider).__name__ == "LegacyIdentityProvider"
    )


main = launch_new_instance = JobServerApp.launch_instance


#: the file in ``state_dir`` that one job server at a time holds
LOCK_FILE = "jobserver.lock"


def hold_lock(path: str) -> IO[str]:
    """Take the store's lock for this process (released when it exits, however it ends):
    two job servers on one store would each take the other's running jobs for leftovers
    of a crash, and run its queued jobs a second time."""
    lock = open(path, "a+", encoding="utf-8")  # noqa: SIM115  # held open while the server runs
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise RuntimeError(
            f"another job server ({holder}) uses the job store in {os.path.dirname(path)}; "
            "stop it, or give this server a JobServerApp.state_dir of its own"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"pid {os.getpid()}")
    lock.flush()
    return lock
