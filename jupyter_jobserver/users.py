"""Who is asking: the services' view of an authenticated person."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class User:
    """A name, and whether this person administers the server (sees and manages
    everyone's jobs and data, may run eval jobs when they are enabled)."""

    name: str
    admin: bool = False

    def may_see(self, record: dict) -> bool:
        """Their own record, a public one, or any for an admin."""
        return self.admin or record.get("owner") == self.name or bool(record.get("public"))

    def visible_filter(self) -> dict[str, Any] | None:
        """:meth:`may_see` as a store filter (``None``: everything), so that a list
        shows exactly the records one by one would."""
        if self.admin:
            return None
        return {"$or": [{"owner": self.name}, {"public": True}]}

    def may_change(self, record: dict) -> bool:
        return self.admin or record.get("owner") == self.name
