"""What a process kind is: how its scripts are checked and bound on the server, and how
a job of it runs in a worker.

Both halves live in one class so that a new kind is one module; the worker imports the
kinds, so a kind's module imports only the standard library and ``runtime`` at its top
(anything heavy, inside the method that needs it).
"""

from __future__ import annotations

from typing import Any


class Process:
    """Base class of the process kinds; each kind is a module of
    :mod:`jupyter_jobserver.processes` with one subclass registered by name."""

    #: the kind's name, as a job record's ``process`` and a script's ``process`` say
    name: str = ""
    #: jobs of this kind run a registered script (eval jobs carry their code instead)
    has_scripts: bool = True
    #: the job reads its bound data from a file (a file script gets a path)
    data_as_path: bool = False
    #: names in the job's folder that the kind itself writes for the job (inputs it hands
    #: over, results it reads back): not among the job's files
    own_files: frozenset[str] = frozenset()

    # --- in the server ------------------------------------------------------------------

    def check_request(self, request: Any) -> None:
        """Refuse (400) a request this kind cannot take; for kinds without scripts."""

    def bind(
        self,
        script: Any,
        args: list[Any],
        kwargs: dict[str, Any],
        bound: dict[str, Any],
    ) -> dict[str, Any]:
        """The values a job of ``script`` runs with, from those the schema ``bound``
        (the kind may refuse or drop values it has no way to pass)."""
        return bound

    def spec(self, script: Any) -> dict[str, Any]:
        """What a worker needs to run ``script`` (never shown to clients)."""
        return {}

    def portable(self, spec: dict[str, Any]) -> dict[str, Any]:
        """``spec`` carrying as content what it names by a path of the server's, for an
        executor that shares no disk with the server (called off the event loop)."""
        return spec

    # --- in a worker --------------------------------------------------------------------

    def provenance(self, task: dict[str, Any], cache: dict[str, Any]) -> dict[str, Any]:
        """The identity of the code the task runs (version, hash), as this worker sees
        it; ``cache`` lives as long as the worker."""
        return {}

    def spare_processes(self) -> frozenset[int]:
        """Processes this kind started ahead of the next job (a kernel), which the
        clean-up after each job leaves running."""
        return frozenset()

    def run(self, task: dict[str, Any], done: dict[str, Any]) -> Any:
        """Run the task in this process and return its result; may record in ``done``
        (``exit_code``, the ``provenance`` parameters the code used)."""
        raise NotImplementedError
