"""A job's folder and its stdout and stderr files, made at the least cost.

Creating two files for every job was most of what a short job cost a worker (file
creation is a journalled write of the folder). So a worker keeps one pair of spare files
of its own next to the job folders, and points a job's file descriptors 1 and 2 at them.
The pair takes its place in the job's folder (a rename: the open descriptors go on
writing into the same files) once the job has run for one flush interval, so output
shows while it runs, or when it ends having written something. A pair a job left empty
serves the next job, so a quick silent job creates no output file at all; readers of a
job's output already take a missing file as no output yet.

The job's folder itself is a spare folder the worker made in a thread of its own while
it waited for the job, renamed into place when the job starts (a rename costs a tenth of
making a folder); when the spare is not ready yet, the folder is made as before.
"""

from __future__ import annotations

import contextlib
import os
import threading

STREAMS = ("stdout", "stderr")

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND


class JobOutput:
    """The output files of the job running in this process; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spare: dict[str, tuple[str, int]] = {}  # stream: (spare path, fd)
        self._job_dir: str | None = None
        self._current: dict[str, tuple[str, int]] = {}
        self._placed = False

    def open(self, job_dir: str, *, fresh: bool = False) -> tuple[int, int]:
        """File descriptors for the job's stdout and stderr (the caller must not close
        them; :meth:`close` does). ``fresh``: the folder was made just now, so it holds
        no output of an earlier run."""
        with self._lock:
            self._job_dir = job_dir
            # output kept from an earlier run of the job is appended to, as before
            existing = not fresh and any(os.path.exists(os.path.join(job_dir, s)) for s in STREAMS)
            root = os.path.dirname(job_dir)
            self._current = {}
            for stream in STREAMS:
                if existing:
                    path = os.path.join(job_dir, stream)
                    self._current[stream] = (path, os.open(path, _FLAGS, 0o644))
                    continue
                spare = self._spare.pop(stream, None)
                if spare is not None and os.path.dirname(spare[0]) != root:
                    _close(spare)
                    spare = None
                if spare is None:
                    path = os.path.join(root, f".output-{os.getpid()}-{stream}")
                    spare = (path, os.open(path, _FLAGS | os.O_TRUNC, 0o644))
                self._current[stream] = spare
            self._placed = existing
            return self._current["stdout"][1], self._current["stderr"][1]

    def place(self) -> None:
        """Give the job's output files their names in its folder, if not done yet."""
        with self._lock:
            self._place()

    def close(self) -> None:
        """The job ended: keep what it wrote, and keep an unused pair for the next job."""
        with self._lock:
            if not self._placed and any(os.fstat(fd).st_size for _, fd in self._current.values()):
                self._place()
            for stream, entry in self._current.items():
                if self._placed:
                    os.close(entry[1])
                else:
                    self._spare[stream] = entry
            self._current = {}
            self._job_dir = None

    def discard(self) -> None:
        """Remove the spare files (the worker is ending)."""
        with self._lock:
            for entry in self._spare.values():
                _close(entry)
            self._spare.clear()

    def _place(self) -> None:
        if self._placed or self._job_dir is None or not self._current:
            return
        for stream, (path, _) in self._current.items():
            try:
                os.rename(path, os.path.join(self._job_dir, stream))
            except OSError:  # the job removed its own folder: its output goes with it
                with contextlib.suppress(OSError):
                    os.remove(path)
        self._placed = True


def _close(entry: tuple[str, int]) -> None:
    path, fd = entry
    with contextlib.suppress(OSError):
        os.close(fd)
    with contextlib.suppress(OSError):
        os.remove(path)


class SpareFolder:
    """An empty folder made ahead, in a thread, that becomes the next job's folder."""

    def __init__(self) -> None:
        self._root: str | None = None
        self._ready = threading.Event()
        self._wanted = threading.Event()
        self._thread: threading.Thread | None = None

    def make(self, job_dir: str) -> bool:
        """Make the job's folder (nothing to do if it exists already); whether it is new."""
        root = os.path.dirname(job_dir)
        if self._ready.is_set() and self._root == root:
            self._ready.clear()
            try:
                os.rename(self._path(root), job_dir)
            except OSError:  # it exists already (the server put the job's data in it)
                self._ready.set()
            else:
                self._wanted.set()
                return True
        elif self._root is None:
            self._root = root
            self._thread = threading.Thread(
                target=self._loop, name="jobserver-folders", daemon=True
            )
            self._thread.start()
            self._wanted.set()
        try:
            os.makedirs(job_dir)
        except FileExistsError:
            return False
        return True

    def discard(self) -> None:
        if self._root is not None and self._ready.is_set():
            with contextlib.suppress(OSError):
                os.rmdir(self._path(self._root))

    def _path(self, root: str) -> str:
        return os.path.join(root, f".folder-{os.getpid()}")

    def _loop(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            root = self._root
            if root is None or self._ready.is_set():
                continue
            try:
                os.makedirs(self._path(root), exist_ok=True)
            except OSError:
                continue  # the next job's folder is made when it starts, as before
            self._ready.set()


#: the output of the job this process runs (a process runs one job at a time)
OUTPUT = JobOutput()

#: the next job's folder
FOLDER = SpareFolder()


def spare_paths(root: str, pid: int) -> list[str]:
    """The spare output files a worker process ``pid`` may have left in ``root``."""
    return [os.path.join(root, f".output-{pid}-{stream}") for stream in STREAMS]


def is_spare(name: str) -> bool:
    """Whether a name in the job folders' root is a worker's spare file or folder."""
    return name.startswith((".output-", ".folder-"))


def adopt(root: str, pid: int, job_dir: str | None) -> None:
    """A worker ended without tidying up (it was killed): what the job it ran had
    written goes into that job's folder, and spare files go."""
    for stream, path in zip(STREAMS, spare_paths(root, pid), strict=True):
        if not os.path.exists(path):
            continue
        target = os.path.join(job_dir, stream) if job_dir else None
        try:
            if target is None or not os.path.getsize(path) or os.path.exists(target):
                os.remove(path)
            else:
                os.rename(path, target)
        except OSError:
            with contextlib.suppress(OSError):
                os.remove(path)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.join(root, f".folder-{pid}"))


def place() -> None:
    """Make the running job's output files readable by name in its folder now (for code
    that reads back what the job wrote, such as the end of its stderr)."""
    OUTPUT.place()
