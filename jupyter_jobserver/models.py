"""Request models: what a client may send, checked before anything is done.

Every model forbids unknown fields and is strict about types (``"true"`` is not a
boolean), so a typo is a 400 that names the field, not a silently ignored option.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import InvalidRequest
from .vocabulary import BINDING_KINDS

#: the largest offset or revision: a whole number every JSON reader keeps exactly
MAX_COUNT = 2**53
MAX_TAGS = 32
MAX_TAG_LENGTH = 64


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DatafileBinding(_Model):
    """A file in the data folder, by name."""

    type: Literal["datafile"]
    name: Annotated[str, Field(min_length=1, max_length=255)]


class StoredDataBinding(_Model):
    """A data document in the store, by id."""

    type: Literal["mongodb"]
    id: Annotated[str, Field(min_length=1, max_length=64)]


class RawDataBinding(_Model):
    """Inline JSON carried by the job itself."""

    type: Literal["raw_data"]
    data: Any
    datatype: Annotated[str, Field(min_length=1, max_length=64)] = "json"


DataBinding = Annotated[
    DatafileBinding | StoredDataBinding | RawDataBinding, Field(discriminator="type")
]

#: no control characters (C0, DEL or C1) in a tag or a name
PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]+$"
Tag = Annotated[str, Field(min_length=1, max_length=MAX_TAG_LENGTH, pattern=PRINTABLE)]
Timeout = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class JobCreate(_Model):
    """Body of ``POST jobs``."""

    script: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    process: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    code: Annotated[str, Field(min_length=1)] | None = None
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    data: DataBinding | None = None
    run: bool = False
    public: bool = False
    timeout: Timeout | None = None
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS)] = Field(default_factory=list)

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, tags: list[str]) -> list[str]:
        return list(dict.fromkeys(tags))


#: a parameter's name in a sweep's grid or sets: what a keyword argument may be called
ParameterName = Annotated[str, Field(min_length=1, max_length=200)]


class SweepCreate(_Model):
    """Body of ``POST sweeps``: many jobs of one script.

    The jobs are every combination of the ``datafiles`` (or the one ``data`` binding),
    the ``sets`` and the points of the ``grid``, in that order of nesting (the grid's
    last parameter changes fastest); each job's keyword arguments are ``kwargs``, then
    its set, then its grid point. A parameter may come from only one of the three.
    """

    script: Annotated[str, Field(min_length=1, max_length=200)]
    grid: dict[ParameterName, list[Any]] = Field(default_factory=dict)
    sets: list[dict[ParameterName, Any]] | None = None
    kwargs: dict[str, Any] = Field(default_factory=dict)
    datafiles: list[Annotated[str, Field(min_length=1, max_length=255)]] | None = None
    data: DataBinding | None = None
    run: bool = False
    public: bool = False
    timeout: Timeout | None = None
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS)] = Field(default_factory=list)

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, tags: list[str]) -> list[str]:
        return list(dict.fromkeys(tags))


def _failed_only() -> list[Literal["failed", "cancelled"]]:
    return ["failed"]


class SweepRerun(_Model):
    """Body of ``POST sweeps/{id}/rerun`` (optional): which of its jobs to run again."""

    statuses: Annotated[list[Literal["failed", "cancelled"]], Field(min_length=1, max_length=2)] = (
        Field(default_factory=_failed_only)
    )


class JobEdit(_Model):
    """Body of ``PATCH jobs/{id}``: ``public`` and ``tags`` may change at any time, the
    rest only while the job is ``created``."""

    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    data: DataBinding | None = None
    timeout: Timeout | None = None
    public: bool | None = None
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS)] | None = None

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, tags: list[str] | None) -> list[str] | None:
        return None if tags is None else list(dict.fromkeys(tags))

    @field_validator("args", "kwargs", "public", "tags", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        return _refuse_null(value)


class JobQuery(_Model):
    """Body of ``POST jobs/query``."""

    filter: dict[str, Any] = Field(default_factory=dict)
    sort: str | dict[str, int] | list[list[Any]] | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    offset: Annotated[int, Field(ge=0, le=MAX_COUNT)] = 0


class JobDelete(_Model):
    """Body of ``DELETE jobs``: which of your jobs to delete (``{}`` matches them all)."""

    filter: dict[str, Any]


Name = Annotated[str, Field(min_length=1, max_length=200, pattern=PRINTABLE)]
Datatype = Annotated[str, Field(min_length=1, max_length=64)]


class DataCreate(_Model):
    """Body of ``POST data``."""

    name: Name
    datatype: Datatype = "json"
    data: Any
    description: Annotated[str, Field(max_length=10_000)] | None = None
    public: bool = False


class DataReplace(DataCreate):
    """Body of ``PUT data/{id}``: the whole document anew. ``revision``, when given, must
    be the document's current revision."""

    revision: Annotated[int, Field(ge=1, le=MAX_COUNT)] | None = None


class DataEdit(_Model):
    """Body of ``PATCH data/{id}``: the fields to change. ``revision``, when given, must
    be the document's current revision."""

    name: Name | None = None
    datatype: Datatype | None = None
    data: Any = None
    description: Annotated[str, Field(max_length=10_000)] | None = None
    public: bool | None = None
    revision: Annotated[int, Field(ge=1, le=MAX_COUNT)] | None = None

    @field_validator("name", "datatype", "public", "revision", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        return _refuse_null(value)


class DataFileCopy(_Model):
    """Body of ``POST datafiles``: copy a file under the Jupyter root into the data folder."""

    path: Annotated[str, Field(min_length=1, max_length=4096)]
    name: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    overwrite: bool = False
    shared: bool = False


class JobRerun(_Model):
    """Body of ``POST jobs/{id}/rerun`` (optional)."""

    run: bool = True
    current_data: bool = False


def _refuse_null(value: Any) -> Any:
    """In a change, leaving a field out keeps it; null would erase what may not be erased."""
    if value is None:
        raise ValueError("may not be null (leave it out to keep it as it is)")
    return value


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], body: Any) -> M:
    """Validate a decoded JSON body, turning pydantic's report into one clear message."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise InvalidRequest(describe_errors(exc)) from None


def describe_errors(exc: ValidationError) -> str:
    """One line per problem, each naming the field it is about."""
    lines = []
    for error in exc.errors():
        location = ".".join(str(p) for p in error["loc"] if not _is_union_tag(p))
        if error["type"] == "extra_forbidden":
            lines.append(f"unknown field {location!r}")
        elif error["type"] == "missing":
            lines.append(f"missing field {location!r}")
        elif error["type"] == "union_tag_invalid":
            lines.append(
                f"{location or 'data'}: type must be one of "
                + ", ".join(repr(kind) for kind in BINDING_KINDS)
            )
        else:
            lines.append(f"{location}: {error['msg']}" if location else error["msg"])
    return "; ".join(dict.fromkeys(lines))


def _is_union_tag(part: Any) -> bool:
    return part in BINDING_KINDS or (isinstance(part, str) and part.endswith("Binding"))
