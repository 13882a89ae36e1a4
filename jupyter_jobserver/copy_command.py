"""``jupyter jobserver copy SOURCE TARGET``: the command line of
:class:`~jupyter_jobserver.store.copy.StoreCopy`.

SOURCE and TARGET are each an SQLite file (a path or a ``sqlite:///`` URL) or a
``mongodb://`` / ``mongodb+srv://`` URL. Beside an SQLite file, job output and files are
in its ``jobs/`` folder (as the job server keeps them in its state folder), unless
``--source-jobs-dir`` / ``--target-jobs-dir`` say otherwise. MongoDB settings
(``MongoStore.database``, ``collection_prefix``, TLS) come from the usual Jupyter
configuration files and the command line.
"""

from __future__ import annotations

import sys
from typing import Any

from jupyter_core.application import JupyterApp
from traitlets import Unicode

from . import __version__
from .store import SQLiteStore
from .store.copy import Progress, Side, StoreCopy


def _store_classes() -> list[type[Any]]:
    """The stores whose settings the command takes (MongoDB's when pymongo is there)."""
    try:
        from .store.mongo import MongoStore
    except ImportError:
        return [SQLiteStore]
    return [SQLiteStore, MongoStore]


class CopyApp(JupyterApp):
    """Copy jobs, data documents, sweeps, job output and job files between stores."""

    name = "jupyter-jobserver-copy"
    version = __version__
    description = __doc__
    examples = (
        "jupyter jobserver copy ~/.local/share/jupyter/jobserver/jobserver.sqlite "
        "mongodb://mongo.example:27017/jobserver"
    )

    source_jobs_dir = Unicode(
        "", help="Where an SQLite source keeps job output and files (default: jobs/ beside it)."
    ).tag(config=True)
    target_jobs_dir = Unicode(
        "", help="Where an SQLite target keeps job output and files (default: jobs/ beside it)."
    ).tag(config=True)

    aliases = {
        **JupyterApp.aliases,
        "source-jobs-dir": "CopyApp.source_jobs_dir",
        "target-jobs-dir": "CopyApp.target_jobs_dir",
    }

    classes = _store_classes()

    def start(self) -> None:
        if len(self.extra_args) != 2:
            self.log.error("give a SOURCE and a TARGET store (see --help)")
            self.exit(2)
        source_url, target_url = self.extra_args
        source = Side(source_url, self.source_jobs_dir, parent=self)
        target = Side(target_url, self.target_jobs_dir, parent=self)
        if source.where() == target.where():
            self.log.error("the source and the target are the same store")
            self.exit(2)
        opened: list[Side] = []
        try:
            for side in (source, target):
                side.open()
                opened.append(side)
            counts = StoreCopy(source, target, Progress(sys.stderr), parent=self).run()
        except RuntimeError as exc:  # a store that cannot be opened says why
            self.log.error("%s", exc)
            self.exit(1)
        finally:
            for side in opened:
                side.close()
        for what, numbers in counts.items():
            print(
                f"{what}: {numbers['added']} added, {numbers['updated']} updated, "
                f"{numbers['same']} already there",
            )
