"""A datatype plug-in: percentages stored as numbers 0-100, given to scripts as fractions."""

from __future__ import annotations

from typing import Any


class Percent:
    @staticmethod
    def validate(payload: Any) -> None:
        if not isinstance(payload, list) or not all(
            isinstance(v, (int, float)) and 0 <= v <= 100 for v in payload
        ):
            raise ValueError("percent data is a list of numbers from 0 to 100")

    @staticmethod
    def to_python(payload: list[float]) -> list[float]:
        return [v / 100 for v in payload]
