"""`qa-app serve --watch`: the app loads a folder, and loads it again when it changes, while serving."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.app_server import serving
from tests.conftest import CORPUS


def wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def test_serve_watch_loads_changes_while_answering(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    with serving(tmp_path / "w.db", "--watch", str(corpus), env={"QA_WATCH_INTERVAL": "0.5"}) as url:
        health = lambda: httpx.get(url + "/healthz", timeout=30).json()  # noqa: E731
        wait_for(lambda: health().get("passages") == 11)
        (corpus / "tea.md").write_text("# Tea\n\nGreen tea is steamed or pan-fired soon after picking.\n")
        (corpus / "trains.html").unlink()
        statuses = []
        deadline = time.monotonic() + 60
        while health().get("passages") != 10:  # +1 tea, -2 trains
            statuses.append(httpx.post(url + "/ask", json={"question": "green tea"}, timeout=30).status_code)
            assert time.monotonic() < deadline, health()
        body = httpx.post(url + "/ask", json={"question": "how is green tea made?"}, timeout=30).json()
        last = health()["watch"]["last_load"]
    assert set(statuses) <= {200}
    assert "steamed or pan-fired" in body["passages"][0]["text"]
    assert (last["files_added"], last["files_removed"], last["files_unchanged"]) == (1, 1, 4)
