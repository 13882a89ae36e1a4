"""Datafiles: files in the data folder that jobs can read.

The data folder is ``data/`` under the Jupyter root by default, so a file dropped there in
JupyterLab's file browser is a datafile too. Only files with a registered extension count.
On a server shared by several users, each user's datafiles live in a folder of their own
(``data/<user>/``) and the files at the top of the data folder are shared: everyone may
read them, administrators may change them.

Names are checked before anything is touched: no separators, no ``..``, no leading dot, no
control characters, no reserved device names, a registered extension, and a path that
stays inside the folder once symlinks are resolved.

Uploads stream to a hidden temporary file in the same folder, hashed as they arrive, and
get their name only when complete (an atomic rename); an upload that fails, goes over a
limit or is cut off leaves nothing behind. A file that is already on the server, under
the Jupyter root, is copied in the same way (:meth:`DataFiles.copy_in`), with the same
checks as an upload.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import concurrent.futures
import contextlib
import dataclasses
import datetime as _dt
import hashlib
import io
import json
import os
import pathlib
import re
import shutil
import stat as _stat
import threading
import time
import unicodedata
import uuid
from collections.abc import Iterator
from typing import Any

from traitlets import Bool, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from ..errors import Conflict, InvalidRequest, NotFound, PermissionDenied, TooLarge
from ..runtime.checksums import sha256_file
from ..store.query import format_time
from ..users import User

UPLOAD_PREFIX = ".upload-"
#: how many files' checksums are remembered
HASH_CACHE = 10_000
#: a temporary upload older than this at start-up was cut off by a crash
STALE_UPLOAD_SECONDS = 3600
_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"{port}{i}" for port in ("COM", "LPT") for i in [*"0123456789", *"¹²³"]),
}
#: Unicode categories never allowed in a name: controls (C0 and C1), invisible format
#: characters (zero-width space, bidi overrides that make a name read otherwise, BOM),
#: line and paragraph separators, and lone surrogates
_HIDDEN = {"Cc", "Cf", "Zl", "Zp", "Cs"}
_BAD_CHARS = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_SAFE_USER = re.compile(r"[^A-Za-z0-9._-]")
#: a legacy folder name with an escape of more than two hex digits, or one followed by a
#: hex digit: it may stand for more than one user name
_AMBIGUOUS_LEGACY = re.compile(r"%[0-9A-F]{3}")
#: the part of a multipart body whose form field is named exactly "file"
_FILE_FIELD = re.compile(r'^content-disposition:[^\r\n]*;\s*name="file"(;|\s*$)', re.MULTILINE)
FORMATS = {
    "csv": "text/csv; charset=UTF-8",
    "json": "application/json; charset=UTF-8",
    "html": "text/html; charset=UTF-8",
    "txt": "text/plain; charset=UTF-8",
    "raw": "application/octet-stream",
}


@dataclasses.dataclass(frozen=True)
class Location:
    """Where a named datafile lives for a user, and whether they may change it."""

    name: str
    path: pathlib.Path
    folder: pathlib.Path
    shared: bool
    writable: bool


class DataFiles(LoggingConfigurable):
    """The data folder: list, read, convert, upload and delete datafiles."""

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

    per_user = Bool(
        False,
        help="Each user has a folder of their own (multi-user servers), under `user_dirs`.",
    )

    user_dirs = Unicode(
        "",
        help="Where each user's own datafiles live on a server with several users: one "
        "folder per user under it. Empty: under data_dir. With several users the job "
        "server uses <state_dir>/datafiles, outside the Jupyter root, so that Jupyter's "
        "Contents API (which knows no owners) cannot reach other users' private files.",
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hashes: collections.OrderedDict[tuple[Any, ...], str] = collections.OrderedDict()
        self._reserved: dict[pathlib.Path, int] = {}

    @property
    def root(self) -> pathlib.Path:
        return pathlib.Path(self.data_dir)

    @property
    def extensions(self) -> tuple[str, ...]:
        return tuple(e.lower().lstrip(".") for e in self.datafile_extensions)

    # --- names and places --------------------------------------------------------------

    def check_name(self, name: str) -> str:
        """The name if it is a safe datafile name, else a 400 that says what is wrong."""
        if not name:
            raise InvalidRequest("a datafile name cannot be empty")
        size = len(name.encode("utf-8", "surrogatepass"))
        if size > 255:
            raise InvalidRequest(
                f"a datafile name is at most 255 bytes in UTF-8 (file systems allow no more); "
                f"this one is {size}"
            )
        if name in (".", "..") or ".." in name.split("."):
            raise InvalidRequest(f"{name!r} is not a datafile name: '..' is not allowed")
        if name.startswith("."):
            raise InvalidRequest(f"{name!r} is not a datafile name: it may not start with a dot")
        if _BAD_CHARS.search(name) or any(unicodedata.category(c) in _HIDDEN for c in name):
            raise InvalidRequest(
                f"{name!r} is not a datafile name: no path separators, control or invisible "
                'formatting characters, or any of :*?"<>|'
            )
        if name != name.strip() or name.endswith("."):
            raise InvalidRequest(
                f"{name!r} is not a datafile name: it may not end with a space or dot"
            )
        if name.split(".")[0].rstrip(" ").upper() in _RESERVED:
            raise InvalidRequest(f"{name!r} is not a datafile name: it is a reserved device name")
        extension = self.extension(name)
        if extension not in self.extensions:
            raise InvalidRequest(
                f"{name!r} does not have a datafile extension; allowed: "
                f"{', '.join('.' + e for e in self.extensions)}"
            )
        return name

    @staticmethod
    def extension(name: str) -> str:
        return name.rsplit(".", 1)[-1].lower() if "." in name else ""

    def folders(self, user: User) -> list[tuple[pathlib.Path, bool, bool]]:
        """(folder, shared, writable) in the order names are looked up."""
        if not self.per_user:
            return [(self.root, False, True)]
        base = pathlib.Path(self.user_dirs) if self.user_dirs else self.root
        own = base / _folder_name(user.name)
        self._migrate(user.name, own)
        return [(own, False, True), (self.root, True, user.admin)]

    def _migrate(self, user: str, own: pathlib.Path) -> None:
        """Move the user's folder from where earlier versions kept it: under data_dir
        (when `user_dirs` is elsewhere), and named by the earlier scheme (``%`` and the
        code point in hex, of no fixed width, which two users could share) when that
        name can only have been this user's. An ambiguous one is left for an
        administrator to move, and the log says so."""
        if own.exists():
            return
        legacy = _legacy_folder_name(user)
        candidates = [self.root / own.name] if own.parent != self.root else []
        if legacy != own.name:
            candidates.append(self.root / legacy)
        for old in candidates:
            if not old.is_dir():
                continue
            if old.name == legacy and _AMBIGUOUS_LEGACY.search(legacy):
                self.log.warning(
                    "jobserver: the datafile folder %s may belong to %r or to another "
                    "user; move it to %s if it is theirs",
                    old,
                    user,
                    own,
                )
                continue
            try:
                own.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(old), str(own))
            except OSError as exc:
                self.log.warning("jobserver: could not move %s to %s: %s", old, own, exc)
                continue
            self.log.info("jobserver: moved the datafile folder %s to %s", old, own)
            return

    def locate(
        self, user: User, name: str, *, for_writing: bool = False, shared: bool = False
    ) -> Location:
        """Where ``name`` is (or would go: in the user's own folder, or the shared one) for
        ``user``; a 400 if it would leave the folder."""
        self.check_name(name)
        folders = self.folders(user)
        if not for_writing:
            for folder, is_shared, writable in folders:
                candidate = self._inside(folder, name)
                if candidate.is_file():
                    return Location(name, candidate, folder, is_shared, writable)
        folder, is_shared, writable = folders[-1] if shared else folders[0]
        return Location(name, self._inside(folder, name), folder, is_shared, writable)

    def _inside(self, folder: pathlib.Path, name: str) -> pathlib.Path:
        base = folder.resolve()
        path = (folder / name).resolve()
        if path.parent != base:
            raise InvalidRequest(f"{name!r} resolves outside the data folder")
        return folder / name

    def existing(self, user: User, name: str) -> Location:
        location = self.locate(user, name)
        if not location.path.is_file():
            raise NotFound(f"no datafile named {name!r}")
        return location

    # --- reading -----------------------------------------------------------------------

    async def list(self, user: User) -> list[dict[str, Any]]:
        """Every datafile the user can read, with its checksum."""
        return await asyncio.to_thread(self._list, user)

    def _list(self, user: User) -> builtins.list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for folder, shared, _ in self.folders(user):
            for entry in self._datafiles_in(folder):
                if entry.name not in seen:  # the user's own file hides a shared namesake
                    seen[entry.name] = self.describe(pathlib.Path(entry.path), shared)
        return list(seen.values())

    def _datafiles_in(self, folder: pathlib.Path) -> builtins.list[os.DirEntry[str]]:
        """The datafiles in one folder, by name."""
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except FileNotFoundError:
            return []
        found = []
        for entry in entries:
            if not self._listable(entry):
                continue
            try:
                self._inside(folder, entry.name)
            except InvalidRequest:
                continue  # a symlink that leads out of the folder is not a datafile
            found.append(entry)
        return found

    def _listable(self, entry: os.DirEntry[str]) -> bool:
        if entry.name.startswith(".") or not entry.is_file():
            return False
        try:
            self.check_name(entry.name)
        except InvalidRequest:
            return False
        return True

    async def info(self, user: User, name: str) -> dict[str, Any]:
        location = await asyncio.to_thread(self.existing, user, name)
        with _gone_is_not_found(name):
            return await asyncio.to_thread(self.describe, location.path, location.shared)

    async def open(self, user: User, name: str) -> tuple[Location, Any]:
        """A datafile, open for reading in binary (the caller closes it): once open, a
        delete racing the read no longer matters."""
        location = await asyncio.to_thread(self.existing, user, name)
        with _gone_is_not_found(name):
            return location, await asyncio.to_thread(location.path.open, "rb")

    def describe(
        self, path: pathlib.Path, shared: bool = False, digest: str | None = None
    ) -> dict[str, Any]:
        """A datafile's metadata: name, size, modified, extension, sha256 (off the loop);
        ``digest`` is the sha256 when it is known already (an upload hashed as it wrote)."""
        stat = path.stat()
        meta = {
            "name": path.name,
            "size": stat.st_size,
            "modified": _iso(stat.st_mtime),
            "extension": self.extension(path.name),
            "sha256": self.checksum(path, stat, digest),
        }
        if self.per_user:
            meta["shared"] = shared
        return meta

    def checksum(
        self, path: pathlib.Path, stat: os.stat_result | None = None, known: str | None = None
    ) -> str:
        """sha256 of a file, remembered until the file changes (the most recent few
        thousand files are kept); ``known`` is taken as it when given (call off the loop)."""
        stat = stat or path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
        digest = known or self._hashes.get(key) or sha256_file(path)
        self._hashes[key] = digest
        self._hashes.move_to_end(key)
        while len(self._hashes) > HASH_CACHE:
            self._hashes.popitem(last=False)
        return digest

    async def convert(self, user: User, name: str, fmt: str) -> tuple[str, bytes]:
        """A tabular datafile's content as csv, json, html or txt."""
        if fmt not in FORMATS or fmt == "raw":
            raise InvalidRequest(f"format must be one of: {', '.join(FORMATS)}, not {fmt!r}")
        location = await asyncio.to_thread(self.existing, user, name)
        with _gone_is_not_found(name):
            size = location.path.stat().st_size
        if size > self.max_convert_size:
            raise TooLarge(
                f"{name} is {size:,} bytes; files over {self.max_convert_size:,} bytes are not "
                "converted (read it with format=raw)"
            )
        try:
            with _gone_is_not_found(name):
                return FORMATS[fmt], await asyncio.to_thread(_convert, location.path, fmt)
        except ValueError as exc:  # bad JSON, a broken CSV, an empty file, text that is not UTF-8
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InvalidRequest(
                f"{name} cannot be read as a table, so it cannot be shown as {fmt} ({reason}); "
                "read it with format=raw"
            ) from None

    # --- changing ----------------------------------------------------------------------

    def start_upload(
        self,
        user: User,
        name: str,
        *,
        overwrite: bool,
        expected_size: int | None,
        shared: bool = False,
    ) -> Upload:
        """Check everything that can be checked before the body arrives; open the upload.
        With ``shared`` (administrators, on a server with several users), the file goes to
        the shared folder."""
        if shared and not (self.per_user and user.admin):
            raise PermissionDenied(
                "only administrators of a server with several users upload shared datafiles"
            )
        location = self.locate(user, name, for_writing=True, shared=shared)
        if not location.writable:
            raise PermissionDenied(
                f"{name} is a shared datafile; only administrators may change it"
            )
        if location.path.exists() and not overwrite:
            raise Conflict(
                f"a datafile named {name!r} exists; upload with overwrite=true to replace it"
            )
        used = self._used(location) if self.datafile_quota else 0
        if expected_size is not None:
            self._check_size(name, expected_size)
            self._check_quota(location, used, expected_size)
        location.folder.mkdir(parents=True, exist_ok=True)
        upload = Upload(self, location, overwrite=overwrite, used=used)
        self._reserved[upload.temporary] = expected_size or 0
        return upload

    def _check_size(self, name: str, size: int) -> None:
        if self.max_datafile_size and size > self.max_datafile_size:
            raise TooLarge(
                f"{name} is {size:,} bytes; datafiles may be at most "
                f"{self.max_datafile_size:,} bytes"
            )

    def _used(self, location: Location) -> int:
        """Bytes the folder's datafiles take, but the one this upload would replace
        (scanned once, when an upload starts)."""
        try:
            entries = list(os.scandir(location.folder))
        except FileNotFoundError:
            return 0
        return sum(
            entry.stat().st_size
            for entry in entries
            if entry.is_file()
            and entry.name != location.name
            and not entry.name.startswith(UPLOAD_PREFIX)  # counted by their reservations
        )

    def _check_quota(
        self, location: Location, used: int, extra: int, upload: pathlib.Path | None = None
    ) -> None:
        """Refuse (413) when the folder's datafiles, the other uploads under way into it
        and ``extra`` bytes do not fit the quota."""
        if not self.datafile_quota:
            return
        used += sum(
            size
            for path, size in self._reserved.items()
            if path.parent == location.folder and path != upload
        )
        if used + extra > self.datafile_quota:
            raise TooLarge(
                f"the data folder holds {used:,} bytes and its quota is {self.datafile_quota:,}; "
                f"{location.name} ({extra:,} bytes) does not fit — delete some datafiles first"
            )

    async def copy_in(
        self,
        user: User,
        root: str | os.PathLike[str],
        path: str,
        *,
        name: str | None = None,
        overwrite: bool = False,
        shared: bool = False,
        allow_hidden: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Copy the file at ``path`` (relative to ``root``, the Jupyter root folder) into
        the data folder as ``name`` (its own name by default), with the checks of an
        upload: a datafile name, the size limit, the quota, 409 over an existing name
        unless ``overwrite``. The path may not leave ``root``, not even through a
        symlink, nor go through a hidden folder unless ``allow_hidden`` (as Jupyter's
        contents service). Returns the datafile's metadata and whether it replaced one."""
        source = await asyncio.to_thread(_source_file, pathlib.Path(root), path, allow_hidden)
        target = self.check_name(name if name is not None else source.name)
        # the last step may not be a symlink swapped in since the path was resolved, nor
        # anything but a regular file (a FIFO would never end)
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(fd)
            if not _stat.S_ISREG(info.st_mode):
                raise InvalidRequest(f"{path!r} is not a file")
            size = info.st_size
            upload = self.start_upload(
                user, target, overwrite=overwrite, expected_size=size, shared=shared
            )
            existed = overwrite and upload.location.path.exists()
            try:
                while chunk := await asyncio.to_thread(f.read, Upload.BLOCK):
                    await upload.write(chunk)
                meta = await upload.finish()
            except BaseException:
                upload.abort()
                raise
        return meta, existed

    async def delete(self, user: User, name: str) -> None:
        location = await asyncio.to_thread(self.existing, user, name)
        if not location.writable:
            raise PermissionDenied(
                f"{name} is a shared datafile; only administrators may delete it"
            )
        with _gone_is_not_found(name):  # another delete came first
            await asyncio.to_thread(location.path.unlink)

    async def delete_all(self, user: User) -> int:
        """Delete every datafile in the user's own folder."""

        def delete() -> int:
            own, _, _ = self.folders(user)[0]
            count = 0
            for entry in self._datafiles_in(own):  # no need to hash what goes
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    count += 1
            return count

        return await asyncio.to_thread(delete)

    def remove_stale_uploads(self) -> int:
        """Remove temporary files of uploads a crash cut off."""
        removed = 0
        folders = []
        for base in dict.fromkeys([self.root, pathlib.Path(self.user_dirs or self.root)]):
            if base.is_dir():
                folders += [base, *(p for p in base.iterdir() if p.is_dir())]
        cutoff = time.time() - STALE_UPLOAD_SECONDS
        for folder in folders:
            for entry in os.scandir(folder):
                if entry.name.startswith(UPLOAD_PREFIX) and entry.stat().st_mtime < cutoff:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        removed += 1
        return removed


class Upload:
    """One upload in progress: a hidden file written and hashed by a thread of its own,
    so neither the disk nor the hash holds up the event loop. Pieces are gathered into
    blocks of ``BLOCK`` bytes before they are handed over; at most ``MAX_PENDING`` blocks
    wait for the disk, which bounds the memory an upload holds."""

    BLOCK = 1 << 20
    MAX_PENDING = 16

    def __init__(
        self, files: DataFiles, location: Location, *, overwrite: bool, used: int = 0
    ) -> None:
        self.files = files
        self.location = location
        self.overwrite = overwrite
        self.used = used
        self.temporary = location.folder / f"{UPLOAD_PREFIX}{uuid.uuid4().hex}.part"
        self.size = 0
        self._hasher = hashlib.sha256()
        self._gathered: list[bytes] = []
        self._gathered_size = 0
        self._blocks: collections.deque[bytes | None] = collections.deque()
        self._ready = threading.Condition()
        self._room: asyncio.Event | None = None
        self._loop = asyncio.get_running_loop()
        self._error: BaseException | None = None
        self._file = open(self.temporary, "xb")  # noqa: SIM115 - closed by the writer thread
        self._thread = threading.Thread(
            target=self._write_loop, name="jobserver-upload", daemon=True
        )
        self._thread.start()
        self._done = False

    async def write(self, chunk: bytes) -> None:
        """Take the next piece; a 413 as soon as the file goes over a limit."""
        self.size += len(chunk)
        self.files._check_size(self.location.name, self.size)
        if self.files.datafile_quota and self.size > self.files._reserved.get(self.temporary, 0):
            self.files._check_quota(self.location, self.used, self.size, self.temporary)
            self.files._reserved[self.temporary] = self.size
        if self._error is not None:
            raise self._error
        self._gathered.append(chunk)
        self._gathered_size += len(chunk)
        if self._gathered_size >= self.BLOCK:
            await self._hand_over()

    async def _hand_over(self, last: bool = False) -> None:
        block = self._gathered[0] if len(self._gathered) == 1 else b"".join(self._gathered)
        self._gathered.clear()
        self._gathered_size = 0
        while len(self._blocks) >= self.MAX_PENDING:  # the disk is behind: wait for it
            self._room = asyncio.Event()
            await self._room.wait()
        with self._ready:
            if block:
                self._blocks.append(block)
            if last:
                self._blocks.append(None)
            self._ready.notify()

    async def finish(self) -> dict[str, Any]:
        """Close the file and give it its name; returns the datafile's metadata."""
        await self._hand_over(last=True)
        await asyncio.to_thread(self._thread.join)
        if self._error is not None:
            self.abort()
            raise self._error
        digest = self._hasher.hexdigest()
        await asyncio.to_thread(self._publish)
        self._done = True
        self.files._reserved.pop(self.temporary, None)
        return self.files.describe(self.location.path, self.location.shared, digest)

    def _publish(self) -> None:
        if self.overwrite:
            os.replace(self.temporary, self.location.path)
            return
        try:
            os.link(self.temporary, self.location.path)  # fails if the name appeared meanwhile
        except FileExistsError:
            raise Conflict(
                f"a datafile named {self.location.name!r} appeared during the upload"
            ) from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.temporary)

    def abort(self) -> None:
        """Drop the upload and its temporary file (safe to call more than once). It does
        not wait for the writer thread: the name goes now, the thread ends on its own."""
        self.files._reserved.pop(self.temporary, None)
        if self._done:
            return
        self._done = True
        self._error = self._error or _Aborted()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temporary)
        with self._ready:
            self._blocks.clear()
            self._blocks.append(None)
            self._ready.notify()

    def _write_loop(self) -> None:
        # the checksum is computed beside the write, block by block (both let go of the
        # GIL), so hashing adds little to the time an upload takes
        hashing = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="jobserver-hash")
        try:
            while True:
                with self._ready:
                    while not self._blocks:
                        self._ready.wait()
                    block = self._blocks.popleft()
                room = self._room
                if room is not None and len(self._blocks) < self.MAX_PENDING // 2:
                    self._room = None
                    with contextlib.suppress(RuntimeError):  # the loop is closed
                        self._loop.call_soon_threadsafe(room.set)
                if block is None:
                    break
                if self._error is None:
                    hashed = hashing.submit(self._hasher.update, block)
                    self._file.write(block)
                    hashed.result()
        except BaseException as exc:  # the disk is full, say
            self._error = exc
            room = self._room
            if room is not None:
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(room.set)
        finally:
            hashing.shutdown()
            self._file.close()


class _Aborted(Exception):
    """The upload was dropped; whatever the writer thread still holds is thrown away."""


class MultipartFile:
    """Streams the ``file`` field out of a ``multipart/form-data`` body as it arrives,
    without holding the body in memory."""

    def __init__(self, content_type: str) -> None:
        match = re.search(r'boundary="?([^";]+)"?', content_type)
        if not match:
            raise InvalidRequest("a multipart upload needs a boundary in its Content-Type")
        self._delimiter = b"\r\n--" + match.group(1).encode("latin-1")
        self._buffer = b"\r\n"  # so the first boundary matches like the others
        self._state = "preamble"
        self._in_file = False
        self.found = False

    def feed(self, data: bytes) -> list[bytes]:
        """The pieces of the file field contained in ``data``."""
        self._buffer += data
        out: list[bytes] = []
        while True:
            if self._state == "preamble":
                index = self._buffer.find(self._delimiter)
                if index < 0:
                    self._buffer = self._buffer[-len(self._delimiter) :]
                    return out
                self._buffer = self._buffer[index + len(self._delimiter) :]
                self._state = "after-boundary"
            if self._state == "after-boundary":
                if len(self._buffer) < 2:
                    return out
                if self._buffer.startswith(b"--"):
                    self._state = "done"
                    return out
                self._buffer = self._buffer[2:]  # CRLF
                self._state = "headers"
            if self._state == "headers":
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._buffer) > 16384:
                        raise InvalidRequest("a multipart part has headers over 16 KiB")
                    return out
                headers = self._buffer[:end].decode("latin-1").lower()
                self._buffer = self._buffer[end + 4 :]
                is_file = bool(_FILE_FIELD.search(headers))
                self._in_file = is_file and not self.found  # a second "file" field is ignored
                self.found = self.found or is_file
                self._state = "body"
            if self._state == "body":
                index = self._buffer.find(self._delimiter)
                if index < 0:
                    keep = len(self._delimiter) - 1
                    piece, self._buffer = self._buffer[:-keep], self._buffer[-keep:]
                    if self._in_file and piece:
                        out.append(piece)
                    return out
                if self._in_file and index:
                    out.append(self._buffer[:index])
                self._buffer = self._buffer[index + len(self._delimiter) :]
                self._state = "after-boundary"
            if self._state == "done":
                return out

    @property
    def complete(self) -> bool:
        return self._state == "done"


def _source_file(root: pathlib.Path, path: str, allow_hidden: bool) -> pathlib.Path:
    """The regular file ``path`` names under ``root``; a 400 for any path that is
    absolute, climbs with ``..``, leaves ``root`` once symlinks are resolved, or (unless
    ``allow_hidden``) goes through a hidden name; a 404 when there is no such file."""
    if not path or "\x00" in path or "\\" in path:
        raise InvalidRequest("path must be a file's path relative to the Jupyter root")
    if path.startswith("/") or pathlib.PurePosixPath(path).is_absolute():
        raise InvalidRequest(f"{path!r} is absolute; give a path relative to the Jupyter root")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidRequest(f"{path!r} is not allowed: '..' may not appear in a path")
    if not parts:
        raise InvalidRequest("path must name a file under the Jupyter root")
    if not allow_hidden and any(p.startswith(".") for p in parts):
        raise InvalidRequest(f"{path!r} is hidden; hidden files are not copied")
    base = root.resolve()
    try:
        resolved = base.joinpath(*parts).resolve(strict=True)
    except FileNotFoundError:
        raise NotFound(f"no file {path!r} under the Jupyter root") from None
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
        raise InvalidRequest(f"{path!r} cannot be opened: {exc}") from None
    if not resolved.is_relative_to(base) or resolved == base:
        raise InvalidRequest(f"{path!r} resolves outside the Jupyter root")
    if not allow_hidden and any(p.startswith(".") for p in resolved.relative_to(base).parts):
        raise InvalidRequest(f"{path!r} leads to a hidden file; hidden files are not copied")
    if not _stat.S_ISREG(resolved.stat().st_mode):
        raise InvalidRequest(f"{path!r} is not a file")
    return resolved


def _folder_name(user: str) -> str:
    """A user's folder name: safe characters as they are, every other one as the
    ``%XX`` bytes of its UTF-8 (``%`` included), so that no two users share one; never
    ``.``, ``..``, hidden or empty."""
    name = _SAFE_USER.sub(_escape, user) or "%"
    return "%2E" + name[1:] if name.startswith(".") else name


def _escape(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8", "surrogatepass"))


def _legacy_folder_name(user: str) -> str:
    """The folder name of earlier versions (the code point in hex, of no fixed width)."""
    name = _SAFE_USER.sub(lambda m: f"%{ord(m.group()):02X}", user) or "%00"
    return "%2E" + name[1:] if name.startswith(".") else name


@contextlib.contextmanager
def _gone_is_not_found(name: str) -> Iterator[None]:
    """A datafile deleted between finding it and reading it was not found."""
    try:
        yield
    except FileNotFoundError:
        raise NotFound(f"no datafile named {name!r}") from None


def _convert(path: pathlib.Path, fmt: str) -> bytes:
    import pandas as pd

    from .datatypes import read_datafile

    value = read_datafile(path, DataFiles.extension(path.name))
    if fmt == "json" and not isinstance(value, pd.DataFrame):
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return json.dumps(value).encode()
    if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        value = pd.DataFrame(value)
    if not isinstance(value, pd.DataFrame):
        raise InvalidRequest(f"{path.name} is not a table, so it has no {fmt} form")
    if fmt == "csv":
        return value.to_csv(index=False).encode()
    if fmt == "json":
        return value.to_json(orient="records", date_format="iso").encode()
    if fmt == "html":
        buffer = io.StringIO()
        value.to_html(buffer, index=False, border=0, classes="jobserver-datafile")
        return buffer.getvalue().encode()
    return value.to_string(index=False).encode()


def _iso(timestamp: float) -> str:
    return format_time(_dt.datetime.fromtimestamp(timestamp, _dt.timezone.utc))
