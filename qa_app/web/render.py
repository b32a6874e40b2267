"""Templates and their filters: everything a page shows is escaped unless a filter marks it safe."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import pass_context
from markupsafe import Markup
from starlette.templating import Jinja2Templates

from qa_app.web.csrf import csrf_field_html, csrf_token
from qa_app.web.highlight import cite_links, highlight
from qa_app.web.passage_text import render_passage


def asset_folder(name: str) -> Path:
    """`templates/` or `static/`: inside the installed package, or at the top of the repository."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "_assets" / name, here.parent.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"qa_app's {name}/ folder is missing: reinstall the package")


@pass_context
def csrf_field(context: Any) -> Markup:
    """`{{ csrf_field() }}`: the hidden CSRF field every state-changing form needs (first in a multipart form)."""
    return csrf_field_html(context["request"].scope)


@pass_context
def csrf_value(context: Any) -> str:
    """`{{ csrf_token() }}`: the token itself, for the meta tag scripts read."""
    return csrf_token(context["request"].scope)


@pass_context
def signed_in(context: Any) -> Any:
    """`{{ signed_in() }}`: the user signed in on this page (a Principal), or None."""
    principal = context["request"].scope.get("qa_app.principal")
    return principal if principal is not None and principal.via == "session" else None


templates = Jinja2Templates(directory=str(asset_folder("templates")))
def turn_query(question: str, before: list[str]) -> str:
    """The query string that asks `question` again after the questions `before` it."""
    return urlencode([("q", question), *(("h", q) for q in before)])


templates.env.filters["highlight"] = highlight
templates.env.globals["turn_query"] = turn_query
templates.env.filters["cite_links"] = cite_links
templates.env.filters["render_passage"] = render_passage
templates.env.globals.update(csrf_field=csrf_field, csrf_token=csrf_value, signed_in=signed_in)
