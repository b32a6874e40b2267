"""Templates and their filters: everything a page shows is escaped unless a filter marks it safe."""

from __future__ import annotations

from pathlib import Path

from starlette.templating import Jinja2Templates

from qa_app.web.highlight import cite_links, highlight


def asset_folder(name: str) -> Path:
    """`templates/` or `static/`: inside the installed package, or at the top of the repository."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "_assets" / name, here.parent.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"qa_app's {name}/ folder is missing: reinstall the package")


templates = Jinja2Templates(directory=str(asset_folder("templates")))
templates.env.filters["highlight"] = highlight
templates.env.filters["cite_links"] = cite_links
