"""Data bindings: what a job reads, checked when it is created, resolved when it runs,
and compared when it is rerun.

=============  ==============================================  ==========================
binding        the job names                                   provenance records
=============  ==============================================  ==========================
``datafile``   ``{"type": "datafile", "name": "x.csv"}``        name, sha256, size, time
``mongodb``    ``{"type": "mongodb", "id": "<data id>"}``       id, revision, sha256
``raw_data``   ``{"type": "raw_data", "data": ..., ``           datatype, sha256
               ``"datatype": "json"}``
=============  ==============================================  ==========================

Whether a script can take a binding is decided by its data parameter (see
:mod:`jupyter_jobserver.data.datatypes`); a binding it cannot take is refused at creation, as
is data that does not exist or that the user may not read.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import Conflict, InvalidRequest, NotFound
from ..users import User
from . import datatypes
from .datafiles import DataFiles
from .documents import DataDocuments, canonical


class DataBindings:
    """Checks, resolves and compares the data jobs are bound to."""

    def __init__(self, files: DataFiles, documents: DataDocuments) -> None:
        self.files = files
        self.documents = documents

    async def check(self, user: User, script: Any, binding: Any) -> None:
        """Refuse (400/404) a binding the script cannot take or the user cannot read."""
        kind = (script.data_parameter or {}).get("kind", "any") if script else "any"
        who = f"{script.name} " if script else "this job "
        if binding.type == "datafile":
            location = await asyncio.to_thread(self.files.existing, user, binding.name)
            extension = self.files.extension(location.name)
            if not datatypes.readable_extension(kind, extension):
                raise InvalidRequest(f"{who}takes {_kind_words(kind)}; {binding.name} is not one")
        elif binding.type == "mongodb":
            document = await self.documents.get(user, binding.id, payload=False)
            if not datatypes.compatible(kind, document["datatype"]):
                raise InvalidRequest(
                    f"{who}takes {_kind_words(kind)}; data document {binding.id} is "
                    f"{document['datatype']}"
                )
        else:
            try:
                await asyncio.to_thread(datatypes.validate, binding.datatype, binding.data)
            except (ValueError, TypeError) as exc:
                raise InvalidRequest(f"data: {exc}") from None
            if not datatypes.compatible(kind, binding.datatype):
                raise InvalidRequest(f"{who}takes {_kind_words(kind)}, not {binding.datatype} data")

    async def resolve(self, job: dict[str, Any], *, by_reference: bool) -> tuple[dict, dict]:
        """What the executor gets for the job's binding, and what provenance records.

        A datafile is handed over by path when the executor shares the server's disk
        (``by_reference``), else as its bytes; a document or inline data always as its
        content, with its ``size`` in bytes of JSON (an executor decides how it travels).
        """
        binding = job["data"]
        owner = User(job["owner"])
        if binding["type"] == "datafile":
            location = await asyncio.to_thread(self.files.existing, owner, binding["name"])
            meta = await asyncio.to_thread(self.files.describe, location.path)
            task: dict[str, Any] = {
                "type": "datafile",
                "name": location.name,
                "extension": self.files.extension(location.name),
            }
            if by_reference:
                task["path"] = str(location.path.resolve())
            else:
                task["content"] = await asyncio.to_thread(location.path.read_bytes)
            record = {
                "type": "datafile",
                "name": location.name,
                "sha256": meta["sha256"],
                "size": meta["size"],
                "modified": meta["modified"],
            }
            return task, record
        if binding["type"] == "mongodb":
            document = await self.documents.get(owner, binding["id"])
            task = {
                "type": "mongodb",
                "id": document["id"],
                "datatype": document["datatype"],
                "data": document["data"],
                "size": document["size"],
            }
            record = {
                "type": "mongodb",
                "id": document["id"],
                "name": document["name"],
                "revision": document["revision"],
                "sha256": document["sha256"],
            }
            return task, record
        text, digest = await asyncio.to_thread(canonical, binding["data"])
        datatype = binding.get("datatype") or "json"
        task = {
            "type": "raw_data",
            "datatype": datatype,
            "data": binding["data"],
            "size": len(text),
        }
        return task, {"type": "raw_data", "datatype": datatype, "sha256": digest}

    async def check_unchanged(self, user: User, job: dict[str, Any], *, current: bool) -> None:
        """Refuse (409) to rerun a job whose data changed since it ran, unless
        ``current`` asks for the data as it is now."""
        recorded = (job.get("provenance") or {}).get("data")
        if current or not recorded or recorded["type"] == "raw_data":
            return  # inline data is part of the job: it cannot have changed
        advice = 'rerun with {"current_data": true} to use the data as it is now'
        try:
            if recorded["type"] == "datafile":
                location = await asyncio.to_thread(self.files.existing, user, recorded["name"])
                digest = await asyncio.to_thread(self.files.checksum, location.path)
                if digest != recorded["sha256"]:
                    raise Conflict(
                        f"datafile {recorded['name']} changed since job {job['id']} read it "
                        f"(sha256 {recorded['sha256'][:12]}… is now {digest[:12]}…); {advice}"
                    )
            else:
                document = await self.documents.get(user, recorded["id"], payload=False)
                if document["sha256"] != recorded["sha256"]:
                    raise Conflict(
                        f"data document {recorded['id']} changed since job {job['id']} read it "
                        f"(revision {recorded['revision']} is now {document['revision']}); {advice}"
                    )
        except NotFound:
            raise Conflict(
                f"the data job {job['id']} read ({recorded.get('name') or recorded.get('id')}) "
                "no longer exists"
            ) from None


def _kind_words(kind: str) -> str:
    return {
        "path": "a datafile (it reads the file itself)",
        "dataframe": "a table",
        "series": "a single column",
        "ndarray": "an array",
        "json": "JSON",
    }.get(kind, "data")
