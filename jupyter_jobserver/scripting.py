"""What a script author imports: parameter constraints and script metadata.

A script is an ordinary Python function. Its signature is its parameter form; these two
helpers add what a signature cannot say::

    from typing import Annotated
    from jupyter_jobserver import Param, script

    @script(version="1.2", cores=2)
    def smooth(data, window: Annotated[int, Param(minimum=1, maximum=365)] = 7):
        ...

This module is imported by worker processes and by scripts: it must stay import-light.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

METADATA_ATTRIBUTE = "__jobserver__"


@dataclass(frozen=True)
class Param:
    """Constraints and help for one parameter, used inside ``typing.Annotated``.

    Every field maps to the JSON Schema keyword of the same name, so forms, validation
    and the REST description all agree on what a valid value is.
    """

    description: str | None = None
    title: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    multiple_of: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    min_items: int | None = None
    max_items: int | None = None
    choices: tuple[Any, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def schema(self) -> dict[str, Any]:
        """The JSON Schema keywords this constraint adds."""
        names = {
            "description": "description",
            "title": "title",
            "minimum": "minimum",
            "maximum": "maximum",
            "exclusive_minimum": "exclusiveMinimum",
            "exclusive_maximum": "exclusiveMaximum",
            "multiple_of": "multipleOf",
            "min_length": "minLength",
            "max_length": "maxLength",
            "pattern": "pattern",
            "min_items": "minItems",
            "max_items": "maxItems",
        }
        out = {key: getattr(self, attr) for attr, key in names.items()}
        out = {k: v for k, v in out.items() if v is not None}
        if self.choices is not None:
            out["enum"] = list(self.choices)
        out.update(self.extra)
        return out


def script(
    func: F | None = None,
    *,
    version: str | None = None,
    cores: int = 1,
    description: str | None = None,
) -> Any:
    """Attach metadata to a script function; usable with or without arguments.

    ``version`` is recorded with every job (default: the version of the package that
    provides the function); ``cores`` is how many cores one run uses, so the executor
    never runs more cores' worth of jobs than it has.
    """
    if cores < 1:
        raise ValueError("cores must be at least 1")

    def mark(f: F) -> F:
        setattr(
            f,
            METADATA_ATTRIBUTE,
            {"version": version, "cores": cores, "description": description},
        )
        return f

    return mark(func) if func is not None else mark
