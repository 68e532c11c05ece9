"""Jinja2 templates -> (subject, text, html).

Templates live in ``maildesk/templates`` and a file of the same name in
``config/templates`` overrides the shipped one. A message kind ``ack`` is
``ack.txt.j2`` with a ``subject`` and a ``body`` block; its HTML part comes from
``ack.html.j2`` when present, else from ``layout.html.j2`` wrapping the text body.
HTML autoescapes; StrictUndefined turns a misspelt variable into an error at render.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)

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

    def names(self) -> set[str]:
        """Message kinds that can be rendered (``ack``, ``notification``...)."""
        return {n[: -len(".txt.j2")] for n in self.env.list_templates() if n.endswith(".txt.j2")}

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


def _paragraphs(text: str):
    """Escape plain text and turn blank-line separated blocks into <p> with <br>."""
    from markupsafe import Markup, escape

    blocks = re.split(r"\n\s*\n", text.strip())
    return Markup("\n".join(f"<p>{Markup('<br>').join(escape(line) for line in b.splitlines())}</p>" for b in blocks))
