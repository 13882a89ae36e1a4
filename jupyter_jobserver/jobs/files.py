"""Job files: what a job wrote in its working folder, kept apart from where it ran.

The job manager reads job files only through :class:`JobFiles`, as it reads output only
through :class:`~.logs.JobLogs`: a folder on this machine today, another store (GridFS,
an object store) later, with nothing changing for those who list or download them.

Where they come from: a job's files are listed, sized and checksummed where the job ran,
when it ended (:func:`jupyter_jobserver.runtime.files.scan`), and that list is the job's
``provenance.files``. An executor that shares the server's disk leaves them where the
worker wrote them (:meth:`JobFiles.folder`); one that does not copies each listed file
here with :meth:`JobFiles.put` before it reports the job finished.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from collections.abc import Iterable

from traitlets import Unicode
from traitlets.config import LoggingConfigurable

from ..errors import InvalidRequest, NotFound
from ..runtime.files import RUNNER_FILES, scan

#: largest piece of a file one read carries
FILE_CHUNK = 1 << 20


class JobFiles(LoggingConfigurable):
    """Where job files live; synchronous and thread-safe (call it off the event loop).
    Paths are relative, ``/``-separated, and checked with :func:`check_path` first."""

    def folder(self, job_id: str) -> str | None:
        """The job's working folder on this machine, or ``None`` when its files are
        kept elsewhere."""
        return None

    def put(self, job_id: str, path: str, data: bytes) -> None:
        """Keep (or add to the end of) one file of a job, for an executor whose workers
        share no disk with the server; call it in order, a piece at a time."""
        raise NotImplementedError

    def list(self, job_id: str, skip: frozenset[str] = RUNNER_FILES) -> list[dict]:
        """``[{path, size, sha256: None}]`` of what is there now (a running job's files;
        the checksums come when it ends)."""
        raise NotImplementedError

    def size(self, job_id: str, path: str) -> int:
        """The size of one file; :class:`NotFound` when there is none."""
        raise NotImplementedError

    def read(self, job_id: str, path: str, offset: int, limit: int) -> bytes:
        """Up to ``limit`` bytes of one file from byte ``offset``."""
        raise NotImplementedError

    def delete(self, job_ids: Iterable[str]) -> None:
        """Forget every file of these jobs."""
        raise NotImplementedError


class FolderJobFiles(JobFiles):
    """Job files in the job's own folder (``<root>/<job id>/``), where the local
    executor's workers run each job: nothing is copied."""

    root = Unicode(help="The folder that holds one folder per job.").tag(config=True)

    def folder(self, job_id: str) -> str:
        return os.path.join(self.root, job_id)

    def _path(self, job_id: str, path: str) -> str:
        """The file's path on disk; a 404 for one that is not a plain file inside the job's
        folder (a symbolic link the job made could point anywhere)."""
        folder = os.path.realpath(self.folder(job_id))
        full = os.path.join(folder, *check_path(path).split("/"))
        if os.path.realpath(full) != full or not os.path.isfile(full):
            raise NotFound(f"the job has no file {path!r}")
        return full

    def put(self, job_id: str, path: str, data: bytes) -> None:
        full = os.path.join(self.folder(job_id), *check_path(path).split("/"))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "ab") as f:
            f.write(data)

    def list(self, job_id: str, skip: frozenset[str] = RUNNER_FILES) -> list[dict]:
        return scan(self.folder(job_id), skip, checksums=False)

    def size(self, job_id: str, path: str) -> int:
        return os.stat(self._path(job_id, path)).st_size

    def read(self, job_id: str, path: str, offset: int, limit: int) -> bytes:
        with open(self._path(job_id, path), "rb") as f:
            f.seek(offset)
            return f.read(limit)

    def delete(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            shutil.rmtree(self.folder(job_id), ignore_errors=True)


def check_path(path: str) -> str:
    """A job file's path as given, once it is known to stay inside the job's folder: a 400
    for an absolute path, ``..``, an empty or ``.`` part, a backslash or a NUL."""
    if (
        not path
        or "\\" in path
        or "\0" in path
        or path.startswith("/")
        or any(part in ("", ".", "..") for part in path.split("/"))
        or posixpath.normpath(path) != path
    ):
        raise InvalidRequest(
            f"{path!r} is not a path inside the job's folder: give it relative, with no "
            "'..', '.' or empty parts, as the job's file list shows it"
        )
    return path
