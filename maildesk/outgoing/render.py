"""Jinja2 templates -> (subject, text, html).

Templates live in ``maildesk/templates`` and a file of the same name in
``config/templates`` overrides the shipped one. A message kind ``ack`` is
``ack.txt.j2`` with a ``subject`` and a ``body`` block; its HTML part comes from
``ack.html.j2`` when present, else from ``layout.html.j2`` wrapping the text body.
HTML autoescapes; StrictUndefined turns a misspelt variable into an error at render.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateNotFound,
    meta,
    select_autoescape,
)
from markupsafe import Markup, escape

__all__ = ["Rendered", "Renderer"]


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class Renderer:
    def __init__(self, override_dir: Path | None = None):
        loaders = [FileSystemLoader(str(override_dir))] if override_dir and override_dir.is_dir() else []
        loaders.append(PackageLoader("maildesk", "templates"))
        self.env = Environment(
            loader=ChoiceLoader(loaders),
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )
        self.env.filters["paragraphs"] = _paragraphs
        self._uses: dict[str, tuple[float, frozenset[str]]] = {}

    def names(self) -> set[str]:
        """Message kinds that can be rendered (``ack``, ``notification``...)."""
        return {n[: -len(".txt.j2")] for n in self.env.list_templates() if n.endswith(".txt.j2")}

    def variables(self, name: str) -> frozenset[str]:
        """Every variable the message kind ``name`` may read (its text and HTML templates and
        what they extend or include): a mail whose templates do not read ``agent_name`` is
        rendered once for all the agents it goes to. Follows edits of the templates."""
        found: set[str] = set()
        todo, seen = [f"{name}.txt.j2", self._html_name(name)], set()
        while todo:
            template = todo.pop()
            if template not in seen:
                seen.add(template)
                names, refs = self._read_names(template)
                found |= names
                todo.extend(refs)
        return frozenset(found)

    def _read_names(self, template: str) -> tuple[frozenset[str], tuple[str, ...]]:
        tmpl = self.env.get_template(template)  # cached by jinja, and a new object after an edit
        cached = getattr(tmpl, "_maildesk_names", None)
        if cached is None:
            tree = self.env.parse(self.env.loader.get_source(self.env, template)[0])
            refs = list(meta.find_referenced_templates(tree))
            names = set(meta.find_undeclared_variables(tree)) | ({"*"} if None in refs else set())  # "*": a computed name
            cached = (frozenset(names), tuple(r for r in refs if r))
            tmpl._maildesk_names = cached
        return cached

    def _html_name(self, name: str) -> str:
        try:
            self.env.get_template(f"{name}.html.j2")
        except TemplateNotFound:
            return "layout.html.j2"
        return f"{name}.html.j2"

    def uses(self, name: str, variable: str) -> bool:
        """Whether the message kind ``name`` reads ``variable`` (re-checked every few seconds)."""
        now = time.monotonic()
        cached = self._uses.get(name)
        if cached is None or now - cached[0] > 2.0:
            cached = self._uses[name] = (now, self.variables(name))
        return variable in cached[1] or "*" in cached[1]

    def render(self, name: str, **context) -> Rendered:
        tmpl = self.env.get_template(f"{name}.txt.j2")
        ctx = tmpl.new_context(context)
        subject = "".join(tmpl.blocks["subject"](ctx)).strip() if "subject" in tmpl.blocks else ""
        body = "".join(tmpl.blocks["body"](tmpl.new_context(context))).strip() + "\n"
        try:
            html_tmpl = self.env.get_template(f"{name}.html.j2")
        except TemplateNotFound:
            html_tmpl = self.env.get_template("layout.html.j2")
        html = html_tmpl.render(**context, text_body=body, subject=subject)
        return Rendered(" ".join(subject.split()), body, html)


_BLOCKS = re.compile(r"\n\s*\n")
_ODD_BREAKS = ("\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")  # line ends besides \n


def _paragraphs(text: str):
    """Escape plain text and turn blank-line separated blocks into <p> with <br>."""
    text = text.strip().replace("\r\n", "\n")
    if any(c in text for c in _ODD_BREAKS):
        blocks = (Markup("<br>").join(escape(line) for line in b.splitlines()) for b in _BLOCKS.split(text))
        return Markup("\n".join(f"<p>{b}</p>" for b in blocks))
    html = _BLOCKS.sub("<>", str(escape(text)))  # the usual case, at C speed; "<>" never occurs in escaped text
    return Markup("<p>" + html.replace("\n", "<br>").replace("<>", "</p>\n<p>") + "</p>")
