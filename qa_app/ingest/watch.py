"""Keep folders loaded: load them now, and again whenever a file under them changes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from qa_app.errors import QAError
from qa_app.ingest.loader import LoadReport, walk_files

log = logging.getLogger(__name__)
Snapshot = tuple[tuple[str, int, int], ...]


def snapshot(paths: Iterable[Path]) -> Snapshot:
    """(path, mtime, size) of every loadable file under `paths`: changes when any file does."""
    entries = []
    for path in paths:
        path = path.resolve()
        for file in walk_files(path) if path.is_dir() else [path] if path.is_file() else []:
            try:
                stat = file.stat()
            except OSError:
                continue
            entries.append((str(file), stat.st_mtime_ns, stat.st_size))
    return tuple(sorted(entries))


async def watch(paths: list[Path], interval: float, load: Callable[[list[Path]], Awaitable[LoadReport]],
                state: dict[str, Any]) -> None:
    """Call `load(paths)` now and whenever a file under them changes, until cancelled. `state` shows
    the last load, or the last error (loading is tried again at the next look)."""
    last: Snapshot | None = None
    while True:
        current = await asyncio.to_thread(snapshot, paths)
        if current != last:
            state["loading"] = True
            try:
                report = await load(paths)
                state["last_load"] = report.as_dict()
                last = current
            except QAError as exc:  # keep serving meanwhile
                state["last_error"] = exc.message
                log.warning("watch: loading %s failed: %s", paths, exc.message)
            finally:
                state["loading"] = False
        await asyncio.sleep(interval)
