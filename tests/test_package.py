"""The wheel is a real package: built from a clean copy of the sources, installed into a new virtual
environment outside the checkout, it loads a file and serves the page, its CSS and JS, and /ask."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.app_server import READY_SECONDS, answers, free_port, stop, wait_ready

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
SOURCES = ["pyproject.toml", "README.md", "qa_app", "templates", "static"]


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    done = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env)
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def build_wheel(tmp_path: Path) -> Path:
    """The wheel of a clean copy (a checkout's build/ may hold files that no longer exist)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path / "dist",
        source, cwd=tmp_path)
    wheels = list((tmp_path / "dist").glob("qa_app-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def fresh_venv(folder: Path) -> Path:
    """A new venv whose dependencies come from this one's site-packages through a .pth line (no
    downloads). A .pth line adds the folder to sys.path without running the .pth files inside it, so
    the checkout's editable qa_app stays out: the wheel's is the one imported."""
    run(sys.executable, "-m", "venv", folder, cwd=folder.parent)
    python = folder / "bin" / "python"
    purelib = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=folder).strip())
    (purelib / "zz_qa_app_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_carries_the_templates_static_files_and_every_module(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, pattern in [("templates", "*.html"), ("static", "*.css"), ("static", "*.js")]:
        for path in (REPO / folder).glob(pattern):
            assert f"qa_app/_assets/{folder}/{path.name}" in names
    modules = {str(p.relative_to(REPO)) for p in (REPO / "qa_app").rglob("*.py")}
    assert modules - names == set()  # a new subpackage missing from [tool.setuptools] packages fails here
    assert "qa_app-" in next(n for n in names if n.endswith("entry_points.txt"))


def test_an_installed_wheel_serves_the_page_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    python = fresh_venv(tmp_path / "venv")
    run(python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel, cwd=tmp_path)
    work = tmp_path / "elsewhere"  # not the checkout: nothing can be found through the repository folder
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "QA_DATA_DIR")}
    where = run(python, "-c", "import qa_app, qa_app.web.render as r; print(qa_app.__file__); "
                              "print(r.asset_folder('templates')); print(r.asset_folder('static'))", cwd=work, env=env)
    for line in where.splitlines():
        assert line.startswith(str(tmp_path / "venv")) and not line.startswith(str(REPO)), where
    qa_app = tmp_path / "venv" / "bin" / "qa-app"
    (work / "notes.md").write_text("# Volcanoes\n\nMauna Loa is the largest shield volcano on Earth.\n")
    loaded = run(qa_app, "load", "notes.md", "--quiet", cwd=work, env=env)
    assert "passages: 1 added" in loaded
    port = free_port()
    log = (work / "serve.log").open("w")
    server = subprocess.Popen([str(qa_app), "serve", "--port", str(port)], cwd=work, env=env, stdout=log,
                              stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(server, lambda: answers(url + "/healthz"), READY_SECONDS, "the installed qa-app serve",
                   lambda: (work / "serve.log").read_text())
        page = httpx.get(url + "/?q=largest+shield+volcano")
        assert page.status_code == 200 and "Mauna Loa" in page.text and "/static/style.css" in page.text
        css, js = httpx.get(url + "/static/style.css"), httpx.get(url + "/static/app.js")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css") and "--accent" in css.text
        assert js.status_code == 200 and "javascript" in js.headers["content-type"] and "EventSource" in js.text
        asked = httpx.get(url + "/ask", params={"q": "largest shield volcano"}).json()
        assert asked["ok"] and "Mauna Loa" in asked["passages"][0]["text"]
        assert httpx.get(url + "/signin", follow_redirects=False).status_code == 303  # authentication off here
        print(f"\ninstalled {wheel.name} into {tmp_path / 'venv'}; qa_app from {where.splitlines()[0]}")
        print(f"GET / {page.status_code}, /static/style.css {css.status_code} ({len(css.content)} bytes), "
              f"/static/app.js {js.status_code} ({len(js.content)} bytes), /ask {asked['passages'][0]['text'][:40]!r}")
    finally:
        stop(server)
        log.close()
