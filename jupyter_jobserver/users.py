"""Who is asking: the services' view of an authenticated person."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class User:
    """A name, and whether this person administers the server (sees and manages
    everyone's jobs and data, may run eval jobs when they are enabled)."""

    name: str
    admin: bool = False

    def may_see(self, record: dict) -> bool:
        """Their own record, a public one, or any for an admin."""
        return self.admin or record.get("owner") == self.name or bool(record.get("public"))

    def may_change(self, record: dict) -> bool:
        return self.admin or record.get("owner") == self.name
