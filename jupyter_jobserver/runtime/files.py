"""The files a job wrote in its working folder: listed, sized and checksummed where the
job ran, once it has ended (so the checksums are of what the job left, and the server
never reads a job's files to describe them).

Imported by workers: standard library only.
"""

from __future__ import annotations

import contextlib
import os
import stat
from typing import Any

from .checksums import sha256_file

#: names in a job's folder that are the job server's bookkeeping, not the job's files:
#: the captured streams, a large result or payload handed over as a file, the folder a
#: datafile sent as content is written to (process kinds add their own)
RUNNER_FILES = frozenset({"stdout", "stderr", "result.json", "data.json", ".data"})


def scan(folder: str, skip: frozenset[str] = RUNNER_FILES, checksums: bool = True) -> list[dict]:
    """``[{path, size, sha256}]`` of the regular files under ``folder``, sorted by path
    (``/``-separated, relative). Top-level names in ``skip`` are left out; so are
    symbolic links (one could point anywhere on the machine) and anything not a plain
    file. Without ``checksums``, ``sha256`` is ``None`` (a listing while the job runs)."""
    found: list[dict] = []
    if not os.path.isdir(folder):
        return found
    for top, dirs, names in os.walk(folder, followlinks=False):
        relative = os.path.relpath(top, folder)
        if relative == ".":
            dirs[:] = [d for d in dirs if d not in skip]
            names = [n for n in names if n not in skip]
        for name in names:
            full = os.path.join(top, name)
            try:
                info = os.lstat(full)
            except OSError:  # gone meanwhile
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            path = name if relative == "." else f"{relative.replace(os.sep, '/')}/{name}"
            found.append(
                {
                    "path": path,
                    "size": info.st_size,
                    "sha256": sha256_file(full) if checksums else None,
                }
            )
    found.sort(key=lambda f: f["path"])
    return found


def total_size(files: list[dict[str, Any]]) -> int:
    return sum(int(f["size"]) for f in files)


def remove(folder: str, files: list[dict[str, Any]]) -> None:
    """Delete these files of a job (a job over its size cap keeps none of them)."""
    for entry in files:
        with contextlib.suppress(OSError):
            os.remove(os.path.join(folder, *entry["path"].split("/")))
