"""The ``eval`` process: raw Python code an administrator sends with the job.

Off unless the server enables it (``JobPolicy.allow_eval``), and then only for
administrators; it runs in a worker like any job, never in the server. Its result is
``result`` if the code sets one, else the value of its last expression (as in a notebook
cell); bound data is the name ``data``.
"""

from __future__ import annotations

import ast
import hashlib
from typing import Any

from ..errors import InvalidRequest
from .base import Process


class EvalProcess(Process):
    name = "eval"
    has_scripts = False

    def check_request(self, request: Any) -> None:
        if request.script is not None:
            raise InvalidRequest("an eval job takes code, not a script")
        if request.code is None:
            raise InvalidRequest("an eval job needs code")
        if request.args or request.kwargs:
            raise InvalidRequest("an eval job takes no args or kwargs; bind data instead")

    def provenance(self, task: dict[str, Any], cache: dict[str, Any]) -> dict[str, Any]:
        return {"code_sha256": hashlib.sha256(task["spec"]["code"].encode()).hexdigest()}

    def run(self, task: dict[str, Any], done: dict[str, Any]) -> Any:
        namespace: dict[str, Any] = {"__name__": "__jobserver_eval__"}
        binding = task.get("data")
        if binding is not None:
            from ..data.datatypes import load_binding

            namespace["data"] = load_binding(binding, {"kind": "any"})
        else:
            namespace["data"] = None
        tree = ast.parse(task["spec"]["code"], filename="<job code>", mode="exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        exec(compile(tree, "<job code>", "exec"), namespace)
        if "result" in namespace:
            return namespace["result"]
        if last is not None:
            return eval(compile(last, "<job code>", "eval"), namespace)
        return None
