"""Example file scripts: executables in other languages, offered like functions."""

from __future__ import annotations

import pathlib

from jupyter_jobserver import FileScript

FILES = pathlib.Path(__file__).parent / "files"

linecount = FileScript(
    file=str(FILES / "linecount.sh"),
    description="Count the lines and words of a datafile (a shell script).",
    version="1.0",
    arguments="options",
    parameters={
        "pattern": {"type": "string", "description": "Count only lines with this text."},
        "top": {
            "type": "integer",
            "minimum": 1,
            "maximum": 100,
            "default": 5,
            "description": "How many of the most common first fields to list.",
        },
    },
    required=[],
    data=["datafile"],
    data_required=True,
)

histogram = FileScript(
    file=str(FILES / "histogram.py"),
    description="Histogram of one column of a CSV datafile (a Python file script).",
    version="1.0",
    arguments="options",
    parameters={
        "column": {"type": "string", "description": "The column to count."},
        "bins": {
            "type": "integer",
            "minimum": 1,
            "maximum": 1000,
            "default": 10,
            "description": "How many bins.",
        },
    },
    data=["datafile"],
    data_required=True,
)

countdown = FileScript(
    file=str(FILES / "countdown.sh"),
    description="Count down slowly, printing as it goes (a shell script with a helper process).",
    version="1.0",
    arguments="options",
    parameters={
        "seconds": {
            "type": "integer",
            "minimum": 1,
            "maximum": 3600,
            "default": 10,
            "description": "Where to start counting.",
        },
    },
)
