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

from qa_app.auth import Accounts, SignInThrottle, session_secret
from qa_app.errors import QAError
from qa_app.service import QAService
from qa_app.settings import Settings, load_settings
from qa_app.web import documents, pages, signin, views
from qa_app.web.errors import EXCEPTION_HANDLERS
from qa_app.web.render import asset_folder
from qa_app.web.security import AccessControl, SecurityHeaders, Sessions


def app_from_environment() -> Starlette:
    """The app configured by QA_* variables: the factory each `serve --workers N` process calls."""
    return create_app(load_settings(os.environ))


def create_app(settings: Settings, service: QAService | None = None, watch: list[Path] | None = None, *,
               accounts: Accounts | None = None, throttle: SignInThrottle | None = None) -> Starlette:
    """The ASGI app; pass a service to share one already open (tests), else it opens its own. With
    `watch`, those files and folders are loaded at start and again whenever they change. Every
    request passes AccessControl (qa_app.web.security) before any route."""
    accounts = accounts or Accounts(settings)
    guard = signin.Guard(accounts, throttle or SignInThrottle())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        own = service is None
        opened = await QAService.open(settings) if own else service
        assert opened is not None
        # Warmed up after the server is ready, not before: start-up is what a new user waits for, and
        # the first questions run while the warm-up makes the kernels (slower, never wrong).
        warming = asyncio.create_task(opened.warm_up())
        watcher = asyncio.create_task(opened.watch(watch)) if watch else None
        try:
            yield {"service": opened}
        finally:
            warming.cancel()
            with contextlib.suppress(asyncio.CancelledError, QAError):  # a failed warm-up costs only speed
                await warming
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
        Route("/corpus", documents.corpus_page, name="corpus"),
        Route("/corpus.json", views.corpus_view, name="corpus_json"),
        Route("/documents", documents.documents, methods=["POST", "DELETE"], name="documents"),
        Route("/documents/remove", documents.remove_form, methods=["POST"], name="documents_remove"),
        Route("/source/{path:path}", views.source_view, name="source"),
        Route("/page/{path:path}", pages.page_view, name="page"),
        Route("/page-image/{path:path}", pages.page_image, name="page_image"),
        Route("/openapi.json", views.openapi, name="openapi"),
        Route("/signin", signin.signin, methods=["GET", "POST"], name="signin"),
        Route("/signout", signin.signout, methods=["POST"], name="signout"),
        Mount("/static", StaticFiles(directory=str(asset_folder("static"))), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(Sessions, secret_key=session_secret(settings), max_age_seconds=int(settings.session_hours * 3600)),
        Middleware(AccessControl, accounts=accounts),
    ]
    app = Starlette(routes=routes, lifespan=lifespan, middleware=middleware, exception_handlers=EXCEPTION_HANDLERS)
    app.state.settings = settings
    app.state.guard = guard
    return app
