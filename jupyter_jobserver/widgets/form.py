"""``JobForm``: build a job from a script's parameter schema, bind data, run it, watch it."""

from __future__ import annotations

import contextlib
import html
import json
import pathlib
from typing import Any

import ipywidgets as widgets

from ..client import Job, JobServerClient
from ..data.datatypes import known_datatypes
from ..errors import Conflict, JobServerError
from .fields import UNSET, Field, fields_for
from .view import JobView

NO_DATA, DATAFILE, DOCUMENT, INLINE = "no data", "datafile", "stored data", "inline JSON"


class JobForm(widgets.VBox):
    """A form for one script (chosen in a dropdown): parameters, data, and a Run button.

    Everything can be driven from Python too: set ``form.fields["n"].widget.value``,
    choose data with :meth:`use_datafile`, :meth:`use_document` or :meth:`use_inline`, then
    ``job = form.submit()``; the form shows the job as it runs (``form.view``).
    """

    def __init__(self, script: str | None = None, client: JobServerClient | None = None) -> None:
        self.client = client or JobServerClient()
        self.scripts = {s["name"]: s for s in self.client.scripts()}
        names = list(self.scripts)
        if script is not None and script not in self.scripts:
            raise ValueError(f"no script named {script!r}; available: {', '.join(names)}")
        self.picker = widgets.Dropdown(
            options=names, value=script or (names[0] if names else None), description="Script"
        )
        self.description = widgets.HTML()
        self.parameters = widgets.VBox()
        self.fields: dict[str, Field] = {}

        self.data_kind = widgets.ToggleButtons(options=[NO_DATA], description="Data")
        self.datafile = widgets.Dropdown(description="Datafile")
        self.upload = widgets.FileUpload(description="Upload", multiple=False)
        self.replace = widgets.Checkbox(
            value=False, description="replace a datafile of the same name", indent=False
        )
        self._held: dict[str, Any] | None = None  # an upload that waits for "replace"
        self.document = widgets.Dropdown(description="Document")
        self.inline = widgets.Textarea(
            placeholder='JSON, e.g. [{"value": 1}, {"value": 2}]',
            layout=widgets.Layout(width="32em", height="6em"),
        )
        self.inline_datatype = widgets.Dropdown(
            options=known_datatypes(), value="json", description="Datatype"
        )
        self.data_box = widgets.VBox()

        self.run_button = widgets.Button(description="Run", icon="play", button_style="primary")
        self.message = widgets.HTML()
        self.view_box = widgets.VBox()
        self.view: JobView | None = None

        self.picker.observe(lambda _: self._show_script(), names="value")
        self.data_kind.observe(lambda _: self._show_data(), names="value")
        self.upload.observe(self._uploaded, names="value")
        self.replace.observe(self._replace_ticked, names="value")
        self.inline.observe(lambda _: self._check(), names="value")
        self.datafile.observe(lambda _: self._check(), names="value")
        self.document.observe(lambda _: self._check(), names="value")
        self.run_button.on_click(lambda _: self._run_clicked())
        super().__init__(
            [
                self.picker,
                self.description,
                self.parameters,
                self.data_kind,
                self.data_box,
                widgets.HBox([self.run_button, self.message]),
                self.view_box,
            ]
        )
        self._show_script()

    # --- building the form ---------------------------------------------------------------

    def _show_script(self) -> None:
        script = self.scripts.get(self.picker.value)
        if script is None:
            return
        self.description.value = f"<p>{(script['description'] or '').split(chr(10) * 2)[0]}</p>"
        self.fields = {f.name: f for f in fields_for(script["parameters"])}
        for field in self.fields.values():
            field.widget.observe(lambda _: self._check(), names="value")
        self.parameters.children = [f.box for f in self.fields.values()]
        kinds = {"datafile": DATAFILE, "mongodb": DOCUMENT, "raw_data": INLINE}
        options = [kinds[k] for k in script["data"]]
        required = bool((script.get("data_parameter") or {}).get("required"))
        self.data_kind.options = options if required and options else [NO_DATA, *options]
        self.data_kind.value = self.data_kind.options[0]
        self._show_data()

    def _show_data(self) -> None:
        kind = self.data_kind.value
        if kind == DATAFILE:
            self.refresh_datafiles()
            self.data_box.children = [widgets.HBox([self.datafile, self.upload, self.replace])]
        elif kind == DOCUMENT:
            self.refresh_documents()
            self.data_box.children = [self.document]
        elif kind == INLINE:
            self.data_box.children = [self.inline, self.inline_datatype]
        else:
            self.data_box.children = []
        self._check()

    def refresh_datafiles(self, select: str | None = None) -> None:
        """List the datafiles again; ``select`` one, else keep the one chosen, else
        choose the first."""
        names = [f["name"] for f in self.client.datafiles()]
        _choose(self.datafile, names, select)

    def refresh_documents(self, select: str | None = None) -> None:
        """List the stored data documents again (see :meth:`refresh_datafiles`)."""
        documents, _ = self.client.data_documents(limit=1000)
        options = [(f"{d['name']} ({d['datatype']})", d["id"]) for d in documents]
        _choose(self.document, options, select)

    def _uploaded(self, change: dict[str, Any]) -> None:
        for item in change["new"] or ():
            self._send_upload(item)

    def _replace_ticked(self, change: dict[str, Any]) -> None:
        if change["new"] and self._held is not None:
            self._send_upload(self._held)

    def _send_upload(self, item: dict[str, Any]) -> None:
        """Upload a file picked in the browser; an existing datafile is replaced only when
        "replace" is ticked (ticking it then sends the file that was held back)."""
        name = item["name"]
        self._held = None
        try:
            self.client.upload(bytes(item["content"]), name, overwrite=self.replace.value)
        except Conflict:
            self._held = item
            self._say(f"a datafile named {name} exists: tick 'replace' to replace it")
            return
        except JobServerError as exc:
            self._say(exc.message)
            return
        self.refresh_datafiles(select=name)
        self._check(done=f"uploaded {name}")

    # --- choosing data from Python --------------------------------------------------------

    def use_datafile(self, name: str) -> None:
        self.data_kind.value = DATAFILE
        self.refresh_datafiles(select=name)
        if self.datafile.value != name:
            raise ValueError(f"no datafile named {name!r}")

    def use_document(self, data_id: str) -> None:
        self.data_kind.value = DOCUMENT
        self.refresh_documents(select=data_id)
        if self.document.value != data_id:
            raise ValueError(f"no data document with id {data_id!r}")

    def use_inline(self, data: Any, datatype: str = "json") -> None:
        self.data_kind.value = INLINE
        self.inline_datatype.value = datatype
        self.inline.value = json.dumps(data)

    def upload_file(self, path: str | pathlib.Path, overwrite: bool = False) -> None:
        """Upload a local file and choose it (what the Upload button does); replacing a
        datafile of the same name needs ``overwrite``."""
        meta = self.client.upload(path, overwrite=overwrite)
        self.data_kind.value = DATAFILE
        self.refresh_datafiles(select=meta["name"])

    # --- checking and running ------------------------------------------------------------

    def problems(self) -> list[str]:
        """What keeps the form from being submitted (empty when it is ready)."""
        found = [
            f"{name}: {problem}"
            for name, field in self.fields.items()
            if (problem := field.check())
        ]
        kind = self.data_kind.value
        if kind == DATAFILE and not self.datafile.value:
            found.append("choose a datafile")
        if kind == DOCUMENT and not self.document.value:
            found.append("choose a data document")
        if kind == INLINE:
            if not self.inline.value.strip():
                found.append('write the inline data as JSON, e.g. [{"value": 1}, {"value": 2}]')
            else:
                try:
                    json.loads(self.inline.value)
                except json.JSONDecodeError as exc:
                    found.append(
                        f"the inline data is not JSON: {exc.msg.lower()} at line {exc.lineno}, "
                        f"column {exc.colno}"
                    )
        return found

    def _check(self, done: str = "") -> None:
        """Enable Run when nothing is missing; say what is missing, or ``done``."""
        problems = self.problems()
        self.run_button.disabled = bool(problems)
        if problems:
            self._say("; ".join([done, *problems] if done else problems))
        else:
            self._say(done, ok=True)

    def values(self) -> dict[str, Any]:
        return {
            name: value
            for name, field in self.fields.items()
            if (value := field.value()) is not UNSET
        }

    def binding(self) -> dict[str, Any] | None:
        kind = self.data_kind.value
        if kind == DATAFILE:
            return self.client.datafile_binding(self.datafile.value)
        if kind == DOCUMENT:
            return self.client.document_binding(self.document.value)
        if kind == INLINE:
            return self.client.inline_binding(
                json.loads(self.inline.value), self.inline_datatype.value
            )
        return None

    def submit(self) -> Job:
        """Create and run the job; the form then shows it as it runs."""
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))
        try:
            job = self.client.create_job(
                self.picker.value, kwargs=self.values(), data=self.binding(), run=True
            )
        except JobServerError as exc:
            self._say(exc.message)
            raise
        self._say(f"started job {job.id[:8]}", ok=True)
        self.view = JobView(job, self.client)
        self.view_box.children = [self.view]
        return job

    def _run_clicked(self) -> None:
        with contextlib.suppress(ValueError, JobServerError):  # the message is on the form
            self.submit()

    def _say(self, text: str, ok: bool = False) -> None:
        colour = "#1e7d32" if ok else "#c62828"
        safe = html.escape(text)
        self.message.value = f'<span style="color:{colour}">{safe}</span>' if text else ""


def _choose(dropdown: widgets.Dropdown, options: list[Any], select: Any = None) -> None:
    """New options for a dropdown, with one chosen (a dropdown given options chooses none):
    ``select``, else the one chosen before, else the first."""
    values = [o[1] if isinstance(o, tuple) else o for o in options]
    before = dropdown.value
    dropdown.options = options
    for wanted in (select, before, values[0] if values else None):
        if wanted is not None and wanted in values:
            dropdown.value = wanted
            return
