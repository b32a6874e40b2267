"""Signing in and out on the page: a form, a signed session cookie, and a slow-down after failures."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from qa_app.auth import Accounts, SignInThrottle
from qa_app.web.csrf import rotate_csrf_token
from qa_app.web.render import templates
from qa_app.web.security import principal_of

MAX_NAME_CHARS = 64
MAX_PASSWORD_CHARS = 1024
WRONG = "Wrong name or password."


@dataclass
class Guard:
    """What the sign-in views share: the accounts, the throttle, and a limit on concurrent password
    checks (each argon2 check holds 64 MiB for about 50 ms; a flood of attempts queues instead)."""

    accounts: Accounts
    throttle: SignInThrottle
    checks: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(2))


def guard_of(request: Request) -> Guard:
    guard: Guard = request.app.state.guard
    return guard


def safe_next(value: str | None) -> str:
    """A path on this site to go to after signing in; anything else (another host, a scheme) is "/"."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")) or any(c < " " for c in value):
        return "/"
    return value


def page(request: Request, next_path: str, *, message: str = "", username: str = "", status: int = 200,
         reload: bool = False) -> Response:
    context = {"next": next_path, "message": message, "username": username, "reload": reload}
    response = templates.TemplateResponse(request, "signin.html", context, status_code=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="qa_app"'
    return response


def after_signin(request: Request, next_path: str) -> Response:
    return RedirectResponse(request.scope.get("root_path", "") + next_path, status_code=303)


async def signin(request: Request) -> Response:
    guard = guard_of(request)
    if request.method != "POST":
        next_path = safe_next(request.query_params.get("next"))
        principal = principal_of(request)
        if not guard.accounts.enabled or principal is not None and principal.via == "session":
            return after_signin(request, next_path)
        # A link from another site arrives without the SameSite=Strict cookie; one reload from this
        # page sends it, so a person who is signed in is not asked again (the header only picks
        # between two pages for someone not yet recognised, it lets nobody in).
        cross = request.headers.get("sec-fetch-site") == "cross-site"
        return page(request, next_path, reload=cross)
    form = await request.form()
    username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
    next_path = safe_next(str(form.get("next", "")))
    if not guard.accounts.enabled:
        return after_signin(request, next_path)
    if not username or not password or len(username) > MAX_NAME_CHARS or len(password) > MAX_PASSWORD_CHARS:
        return page(request, next_path, message="Enter your name and password.", username=username[:MAX_NAME_CHARS],
                    status=400)
    client = request.client.host if request.client else "unknown"
    keys = [f"name:{username.lower()}", f"address:{client}"]
    wait = guard.throttle.retry_after(keys)
    if wait > 0:
        seconds = math.ceil(wait)
        response = page(request, next_path, username=username, status=429,
                        message=f"Too many failed sign-ins. Try again in {seconds} second{'s' * (seconds != 1)}.")
        response.headers["Retry-After"] = str(seconds)
        return response
    async with guard.checks:
        user = await asyncio.to_thread(guard.accounts.users.verify, username, password)
    if user is None:
        guard.throttle.failed(keys)
        return page(request, next_path, message=WRONG, username=username, status=401)
    guard.throttle.succeeded(keys[0])
    session = request.session
    session.clear()  # nothing from before signing in carries over (no session fixation)
    session.update(user=user.name, v=user.fingerprint)
    rotate_csrf_token(request.scope)
    return after_signin(request, next_path)


async def signout(request: Request) -> Response:
    request.session.clear()
    rotate_csrf_token(request.scope)
    return RedirectResponse(str(request.url_for("signin")), status_code=303)
