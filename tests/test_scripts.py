"""The script registry: what a server offers, and each script's parameter schema."""

from __future__ import annotations

import datetime as dt
import enum
import pathlib
from typing import Annotated, Any, Literal

import pandas as pd
import pytest
from helpers import Api, jobserver_config

from jupyter_jobserver import Param, script
from jupyter_jobserver.errors import InvalidRequest
from jupyter_jobserver.parameters import ParameterSchema
from jupyter_jobserver.runtime.introspect import annotation_schema, parse_docstring
from jupyter_jobserver.scripts import function_references


@pytest.fixture
def jp_server_config(tmp_path: pathlib.Path) -> dict[str, Any]:
    config = jobserver_config(tmp_path)
    config["JobServerApp"]["scripts"].update(
        {"broken": "no_such_module:thing", "renamed_echo": "jobserver_test_scripts:echo"}
    )
    config["JobServerApp"]["exclude_scripts"] = ["kill_*"]
    return config


async def test_scripts_lists_examples_configured_and_entry_point_scripts(api: Api) -> None:
    answer = await api.get("scripts")
    assert answer.code == 200
    names = [s["name"] for s in answer.json["scripts"]]
    assert names == sorted(names)
    for name in ("summary", "slow", "fail", "echo", "renamed_echo"):
        assert name in names
    assert "kill_self" not in names  # excluded by pattern
    assert "broken" not in names  # cannot be imported: not offered

    summary = next(s for s in answer.json["scripts"] if s["name"] == "summary")
    assert summary["process"] == "function"
    assert summary["description"].startswith("Summary statistics of a timeseries.")
    assert summary["version"] == "1.0"
    assert summary["data"] == ["datafile", "mongodb", "raw_data"]
    assert summary["data_parameter"] == {"kind": "dataframe", "required": True}
    assert "target" not in summary  # where the code lives is not exposed
    props = summary["parameters"]["properties"]
    assert set(props) == {"column", "percentiles"}
    assert props["percentiles"]["items"] == {"type": "number"}
    assert props["percentiles"]["maxItems"] == 9
    assert props["column"]["type"] == ["string", "null"]
    assert "Summarize only this column." in props["column"]["description"]


async def test_one_script_and_unknown_or_broken_ones(api: Api) -> None:
    echo = await api.get("scripts/echo")
    assert echo.code == 200
    assert echo.json["parameters"]["required"] == ["text"]
    assert echo.json["parameters"]["properties"]["times"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "title": "Times",
        "default": 1,
    }
    missing = await api.get("scripts/nothing")
    assert missing.code == 404
    assert missing.json["error"] == "not_found"
    assert "available scripts:" in missing.json["message"]
    broken = await api.get("scripts/broken")
    assert broken.code == 404
    assert "could not be loaded: ModuleNotFoundError" in broken.json["message"]
    job = await api.post("jobs", {"script": "broken"})
    assert job.code == 404


async def test_parameters_are_checked_when_a_job_is_created(api: Api) -> None:
    cases = [
        ({"kwargs": {}}, "missing parameter 'n'"),
        ({"kwargs": {"n": 1, "colour": "red"}}, "unknown parameter 'colour'; types_demo takes: n,"),
        ({"kwargs": {"n": "3"}}, "parameter 'n' must be an integer, not '3'"),
        ({"kwargs": {"n": 1.5}}, "parameter 'n' must be an integer, not 1.5"),
        ({"kwargs": {"n": True}}, "parameter 'n' must be an integer, not true"),
        ({"kwargs": {"n": 1, "mode": "c"}}, "parameter 'mode' must be one of 'a', 'b', not 'c'"),
        ({"kwargs": {"n": 1, "items": [1, "x"]}}, "parameter 'items'[1] must be an integer"),
        ({"kwargs": {"n": 1, "label": ""}}, "parameter 'label'"),
        ({"args": [1, 2.0, True, "a", None, "extra"]}, "at most 5 positional argument(s)"),
        ({"args": [1], "kwargs": {"n": 2}}, "parameter 'n' given both positionally and by name"),
        ({"kwargs": {"n": 1, "flag": "yes"}}, "parameter 'flag' must be true or false"),
    ]
    for body, message in cases:
        answer = await api.post("jobs", {"script": "types_demo", **body})
        assert answer.code == 400, body
        assert answer.json["error"] == "invalid_request"
        assert message in answer.json["message"], (body, answer.json["message"])
    echo = await api.post("jobs", {"script": "echo", "kwargs": {"text": "x", "times": 0}})
    assert echo.json["message"] == "parameter 'times' must be at least 1, not 0"
    assert (await api.get("jobs")).json["total"] == 0  # nothing half-made was kept

    ok = await api.run("types_demo", args=[3.0], kwargs={"items": [1, 2], "label": "ok"})
    assert ok["result"] == {
        "n": 3,  # 3.0 became the int the script asked for
        "x": 1.5,
        "flag": False,
        "mode": "a",
        "items": [1, 2],
        "label": "ok",
    }
    assert ok["provenance"]["parameters"] == {
        "n": 3,
        "x": 1.5,
        "flag": False,
        "mode": "a",
        "items": [1, 2],
        "label": "ok",
    }


async def test_a_script_needing_more_cores_than_the_server_has_is_refused(
    api: Api, jobserver: Any
) -> None:
    jobserver.registry.get("two_cores").cores = 3
    answer = await api.post("jobs", {"script": "two_cores"})
    assert answer.code == 400
    assert "needs 3 cores; this server runs at most 2" in answer.json["message"]


async def test_request_bodies_are_checked(api: Api) -> None:
    for body, message in [
        ({"script": "echo", "kwargs": {"text": "x"}, "colour": 1}, "unknown field 'colour'"),
        ({"script": "echo", "timeout": -1}, "timeout: Input should be greater than 0"),
        ({"script": "echo", "tags": ["a" * 65]}, "tags.0"),
        ({"script": "echo", "data": {"type": "ftp"}}, "type must be one of"),
        ({"kwargs": {}}, "missing field 'script'"),
        ({"script": "echo", "code": "1"}, "'code' is only for eval jobs"),
    ]:
        answer = await api.post("jobs", body)
        assert answer.code == 400, body
        assert message in answer.json["message"], answer.json
    not_object = await api.call("POST", "jobs", raw=b"[1, 2]")
    assert not_object.json["message"] == "the request body must be a JSON object"


# --- the schema, derived in a worker from the signature ------------------------------


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@pytest.mark.parametrize(
    ("annotation", "schema"),
    [
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (str, {"type": "string"}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (dict[str, float], {"type": "object", "additionalProperties": {"type": "number"}}),
        (Literal["a", "b"], {"enum": ["a", "b"], "type": "string"}),
        (Colour, {"enum": ["red", "blue"], "type": "string"}),
        (int | None, {"type": ["integer", "null"]}),
        (Literal["x"] | None, {"anyOf": [{"enum": ["x"], "type": "string"}, {"type": "null"}]}),
        (dt.datetime, {"type": "string", "format": "date-time"}),
        (dt.date, {"type": "string", "format": "date"}),
        (pathlib.Path, {"type": "string"}),
        (
            tuple[int, str],
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "minItems": 2,
                "maxItems": 2,
                "items": False,
            },
        ),
        (
            Annotated[int, Param(minimum=0, maximum=9, description="digit")],
            {"type": "integer", "minimum": 0, "maximum": 9, "description": "digit"},
        ),
        (Annotated[str, "a plain note"], {"type": "string", "description": "a plain note"}),
        (Any, {}),
    ],
)
def test_annotations_become_json_schema(annotation: Any, schema: dict) -> None:
    assert annotation_schema(annotation) == schema


def test_an_unannotated_parameter_takes_its_type_from_the_default() -> None:
    import inspect

    assert annotation_schema(inspect.Parameter.empty, 3) == {"type": "integer"}
    assert annotation_schema(inspect.Parameter.empty, None) == {}
    assert annotation_schema(pd.DataFrame) == {"x-python-type": "pandas.DataFrame"}


def test_docstrings_in_numpy_and_google_style() -> None:
    numpy_doc = """Fit a line.

    Longer words.

    Parameters
    ----------
    x : int
        The x value,
        over two lines.
    y
        The y.

    Returns
    -------
    float
    """
    import inspect

    description, params = parse_docstring(inspect.cleandoc(numpy_doc))
    assert description == "Fit a line.\n\nLonger words."
    assert params == {"x": "The x value, over two lines.", "y": "The y."}
    google_doc = "Fit.\n\nArgs:\n    x (int): The x.\n    y: The y,\n        continued.\n"
    description, params = parse_docstring(google_doc)
    assert description == "Fit."
    assert params == {"x": "The x.", "y": "The y, continued."}


def test_the_script_decorator_checks_cores() -> None:
    with pytest.raises(ValueError, match="cores must be at least 1"):
        script(cores=0)


def test_binding_reports_every_problem_at_once() -> None:
    schema = ParameterSchema(
        "demo",
        {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
            "required": ["a"],
            "additionalProperties": False,
            "x-positional": ["a", "b"],
        },
    )
    with pytest.raises(InvalidRequest) as caught:
        schema.bind([], {"a": "x", "b": 2})
    assert caught.value.message == (
        "parameter 'a' must be an integer, not 'x'; parameter 'b' must be a string, not 2"
    )
    assert schema.bind([1], {}) == {"a": 1}


def test_references_from_configuration_and_entry_points() -> None:
    refs = function_references({"mine": "pkg.mod:func", "other": {"function": "a:b"}})
    assert refs["mine"] == ("pkg.mod:func", "configuration")
    assert refs["other"] == ("a:b", "configuration")
    assert refs["summary"] == (
        "jupyter_jobserver.examples.scripts:summary",
        "entry point of jupyter-jobserver",
    )
    assert "summary" not in function_references({}, entry_points=False)
    assert "slow" not in function_references({}, exclude=["s*"])
