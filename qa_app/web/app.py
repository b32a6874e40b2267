"""The ASGI app: routes, middleware, and the service opened once for its lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from qa_app.service import QAService
from qa_app.settings import Settings, load_settings
from qa_app.web import views
from qa_app.web.errors import EXCEPTION_HANDLERS
from qa_app.web.render import asset_folder
from qa_app.web.security import SecurityHeaders


def app_from_environment() -> Starlette:
    """The app configured by QA_* variables: the factory each `serve --workers N` process calls."""
    return create_app(load_settings(os.environ))


def create_app(settings: Settings, service: QAService | None = None, watch: list[Path] | None = None) -> Starlette:
    """The ASGI app; pass a service to share one already open (tests), else it opens its own. With
    `watch`, those files and folders are loaded at start and again whenever they change."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        own = service is None
        opened = await QAService.open(settings) if own else service
        assert opened is not None
        await opened.warm_up()
        watcher = asyncio.create_task(opened.watch(watch)) if watch else None
        try:
            yield {"service": opened}
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            if own:
                await opened.close()

    routes = [
        Route("/", views.home, name="home"),
        Route("/ask", views.ask, methods=["GET", "POST"], name="ask"),
        Route("/ask/stream", views.ask_stream, methods=["GET", "POST"], name="ask_stream"),
        Route("/healthz", views.healthz, name="healthz"),
        Route("/corpus", views.corpus_view, name="corpus"),
        Route("/corpus.json", views.corpus_view, name="corpus_json"),
        Route("/source/{path:path}", views.source_view, name="source"),
        Mount("/static", StaticFiles(directory=str(asset_folder("static"))), name="static"),
    ]
    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(SecurityHeaders)],
                     exception_handlers=EXCEPTION_HANDLERS)
