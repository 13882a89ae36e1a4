"""jupyter-jobserver: run shared algorithms as reproducible jobs from Jupyter.

Script authors import :class:`Param`, :func:`script`, :class:`FileScript` and :mod:`context`
from here. The
server extension, the client, the widgets and the magics load only when asked for, so
worker processes and scripts stay light.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .processes.file import FileScript
from .scripting import Param, script

__all__ = ["FileScript", "Param", "__version__", "script"]


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .app import JobServerApp

    return [{"module": "jupyter_jobserver.app", "app": JobServerApp}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The JupyterLab extension built into ``labextension/`` (``jupyter labextension
    develop`` links it for an editable install)."""
    return [{"src": "labextension", "dest": "jupyter-jobserver"}]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext jupyter_jobserver``: the ``%jobserver`` magics."""
    from .magics import JobServerMagics

    ipython.register_magics(JobServerMagics)
