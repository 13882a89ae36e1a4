"""The OpenAPI document in the repository describes exactly the routes the server has."""

from __future__ import annotations

import pathlib
import re

import yaml
from openapi_spec_validator import validate

from jupyter_jobserver.handlers import default_handlers

SPEC = pathlib.Path(__file__).parent.parent / "jupyter_jobserver" / "api" / "openapi.yaml"
METHODS = ("get", "post", "put", "patch", "delete")


def _template(pattern: str) -> str:
    path = pattern.replace("/jobserver/api", "").rstrip("/?")
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", path)


def test_the_document_is_valid_openapi() -> None:
    validate(yaml.safe_load(SPEC.read_text()))


def test_every_route_and_method_is_documented_and_nothing_else() -> None:
    spec = yaml.safe_load(SPEC.read_text())["paths"]
    served = {
        _template(pattern): {m for m in METHODS if m in vars(handler)}
        for pattern, handler in default_handlers
    }
    documented = {path: {m for m in METHODS if m in item} for path, item in spec.items()}
    assert served == documented


def test_every_operation_documents_the_answers_every_handler_can_give() -> None:
    """Jupyter's authentication (401, 403) and an unavailable server (503) on every
    operation; a bad or too large body (400, 413) on every one that takes a body."""
    spec = yaml.safe_load(SPEC.read_text())["paths"]
    for path, item in spec.items():
        for method in METHODS:
            if method not in item:
                continue
            codes = set(item[method]["responses"])
            expected = {"401", "403", "503"}
            if method != "get":
                expected |= {"400", "413"}
            assert expected <= codes, (method, path, sorted(expected - codes))
