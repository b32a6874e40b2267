"""The package's public names, and the direction of its imports: each layer imports only the layers
below it (web -> service -> search/answer/ingest -> embedding/store -> models/errors/settings)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import qa_app

pytestmark = pytest.mark.unit
PACKAGE = Path(qa_app.__file__).parent
# Each layer and what it may import (besides itself and the leaves: models, errors, settings, batching).
ALLOWED = {
    "store": set(),
    "embedding": set(),
    "ingest": {"embedding", "store"},
    "search": {"embedding", "store"},
    "answer": set(),
    "service": {"answer", "embedding", "ingest", "search", "store"},
    "evaluation": {"answer", "ingest", "search", "service"},
    "reindex": {"embedding", "ingest", "search", "store"},
    "auth": set(),
    "web": {"answer", "auth", "search", "service", "store"},
    "cli": {"auth", "evaluation", "ingest", "reindex", "search", "service", "store", "web"},
}
LEAVES = {"models", "errors", "settings", "batching"}


def test_the_public_names_are_exported() -> None:
    assert sorted(qa_app.__all__) == ["Document", "Passage", "QAError", "QAService", "Query", "SearchResult",
                                      "Section", "Settings", "__version__", "load_settings"]
    assert all(hasattr(qa_app, name) for name in qa_app.__all__)


def layer_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_layers(path: Path) -> set[str]:
    layers = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else \
            [a.name for a in node.names] if isinstance(node, ast.Import) else []
        layers |= {n.split(".")[1] for n in names if n.startswith("qa_app.")}
    return layers


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down_only(path: Path) -> None:
    layer = layer_of(path)
    if layer in LEAVES | {"__init__", "__main__"}:
        allowed_below = {"models", "errors", "settings"} if layer != "__init__" else set(ALLOWED) | LEAVES
        assert imported_layers(path) - {layer} <= allowed_below | ({"cli"} if layer == "__main__" else set())
        return
    assert imported_layers(path) - {layer} - LEAVES <= ALLOWED[layer]
