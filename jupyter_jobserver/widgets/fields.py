"""Parameter widgets from a JSON Schema, with the checks the server would make.

The mapping follows ipywidgets' ``interact``: an integer or number with both bounds is a
slider, with one bound a bounded box, with none a box; a boolean is a checkbox; an enum a
dropdown; a string a text field; lists, objects and anything else are JSON in a text area,
checked as they are typed. A value that would be refused is marked before submission.

A required parameter (one with no default) starts empty and is marked "required" until a
value is given: a number is then typed into a text field, a boolean picked from a dropdown,
so the form never sends a value the person did not choose.
"""

from __future__ import annotations

import json
import math
from typing import Any

import ipywidgets as widgets

from ..parameters import type_words, value_problem

UNSET = object()


class Field:
    """One parameter: its widget, a label, and a line for what is wrong with its value."""

    def __init__(self, name: str, prop: dict[str, Any], required: bool) -> None:
        self.name = name
        self.prop = prop
        self.required = required
        self.kinds = _kinds(prop)
        self.widget = self._make()
        self.error = widgets.HTML()
        title = prop.get("title") or name
        self.label = widgets.HTML(
            f"<b>{title}</b>{' *' if required else ''}",
            layout=widgets.Layout(width="11em"),
            tooltip=prop.get("description") or "",
        )
        help_text = prop.get("description") or ""
        self.help = widgets.HTML(f"<small>{help_text}</small>" if help_text else "")
        self.box = widgets.VBox(
            [widgets.HBox([self.label, self.widget]), self.help, self.error],
            layout=widgets.Layout(margin="0 0 4px 0"),
        )
        self.widget.observe(lambda _: self.check(), names="value")
        self.check()

    def _make(self) -> widgets.Widget:
        prop, kinds = self.prop, self.kinds
        default = prop.get("default")
        layout = widgets.Layout(width="26em")
        nullable = "null" in kinds
        unset = "default" not in prop  # nothing to start from: the person chooses
        if "enum" in prop:
            options = list(prop["enum"])
            if unset:
                options = [None, *options]
            value = default if default in options else options[0]
            return widgets.Dropdown(options=options, value=value, layout=layout)
        if kinds == ["boolean"]:
            if unset and self.required:
                choices = [("", None), ("true", True), ("false", False)]
                return widgets.Dropdown(options=choices, value=None, layout=layout)
            return widgets.Checkbox(value=bool(default), indent=False)
        low, high = prop.get("minimum"), prop.get("maximum")
        if kinds in (["integer"], ["number"]) and unset and self.required:
            hint = "an integer" if kinds == ["integer"] else "a number"
            return widgets.Text(placeholder=hint, layout=layout)
        if kinds in (["integer"], ["number"]) and not nullable:
            integer = kinds == ["integer"]
            start = default if default is not None else (low if low is not None else 0)
            if low is not None and high is not None:
                kind = widgets.IntSlider if integer else widgets.FloatSlider
                extra = {} if integer else {"step": _step(low, high, start)}
                return kind(value=start, min=low, max=high, layout=layout, **extra)
            if low is not None or high is not None:
                kind = widgets.BoundedIntText if integer else widgets.BoundedFloatText
                bounds = {
                    "min": low if low is not None else -(2**53),
                    "max": high if high is not None else 2**53,
                }
                return kind(value=start, layout=layout, **bounds)
            return (widgets.IntText if integer else widgets.FloatText)(value=start, layout=layout)
        if "string" in kinds and set(kinds) <= {"string", "null"}:
            return widgets.Text(value=default or "", layout=layout)
        text = "" if default is None else (default if kinds == ["string"] else json.dumps(default))
        return widgets.Textarea(value=text, placeholder=_placeholder(kinds), layout=layout)

    def value(self) -> Any:
        """The value to send, or ``UNSET`` for an optional parameter left empty."""
        raw = self.widget.value
        if isinstance(self.widget, widgets.Dropdown):
            return UNSET if raw is None else raw
        if not isinstance(self.widget, (widgets.Text, widgets.Textarea)):
            return raw
        if raw.strip() == "":
            if not self.required or "null" not in self.kinds:
                return UNSET
            return None
        if "string" in self.kinds and set(self.kinds) <= {"string", "null"}:
            return raw
        return json.loads(raw)

    def check(self) -> str | None:
        """Mark the field if its value would be refused; returns the problem, if any."""
        problem: str | None
        try:
            value = self.value()
        except ValueError as exc:
            if self.kinds and set(self.kinds) <= {"integer", "number", "null"}:
                problem = f"must be {type_words(self.kinds)}"
            else:
                problem = f"not valid JSON: {exc}"
        else:
            if value is UNSET:
                problem = "required" if self.required else None
            else:
                problem = value_problem(self.prop, value)
        self.error.value = f'<span style="color:#c62828">{problem}</span>' if problem else ""
        if problem:
            self.widget.add_class("jobserver-invalid")
        else:
            self.widget.remove_class("jobserver-invalid")
        return problem


def fields_for(schema: dict[str, Any]) -> list[Field]:
    required = set(schema.get("required") or [])
    return [
        Field(name, prop, name in required)
        for name, prop in (schema.get("properties") or {}).items()
    ]


def _step(low: float, high: float, start: float) -> float:
    """A round slider step, about a hundredth of the range, fine enough to land on the
    start value (a default of 0.5 on 0..60 gets 0.1, not 0.6)."""
    step = 10.0 ** math.floor(math.log10((high - low) / 100)) if high > low else 0.01
    while step > 1e-9 and not math.isclose(round((start - low) / step) * step, start - low):
        step /= 10
    return step


def _kinds(prop: dict[str, Any]) -> list[str]:
    kinds = prop.get("type")
    if kinds is None:
        return []
    return kinds if isinstance(kinds, list) else [kinds]


def _placeholder(kinds: list[str]) -> str:
    if "array" in kinds:
        return "JSON, e.g. [1, 2, 3]"
    if "object" in kinds:
        return 'JSON, e.g. {"a": 1}'
    return "JSON"
