"""Who may see what, decided once for every request; and the headers that keep a loaded document
from running in this origin.

`AccessControl` wraps the whole router, so a route is covered by being a route: nothing to call, and
nothing to forget. For each request it finds the route by Starlette's own matching and asks
`required_role(route name, method)`:

- `PUBLIC` routes (health, static files, the OpenAPI description, sign-in and sign-out) are open.
- Every other route, and any path no route matches, needs a reader (GET, HEAD, OPTIONS).
- Any other method (POST, PUT, PATCH, DELETE) needs an editor, unless the route is in `READ_POSTS`
  (a POST that only carries a question), or `ROUTE_ROLES` says otherwise.

When authentication is on, a request is someone only through `Authorization: Bearer <token>` (an API
client) or the signed session cookie (a person signed in on the page); no other header counts. When
it is off, everyone is an editor. Then, against cross-site request forgery:

- A request by any method but GET/HEAD/OPTIONS that a browser marks as coming from another site
  (`Origin` of another host, `Sec-Fetch-Site: cross-site` or `same-site`) is refused. A page cannot
  forge these headers in its visitor's browser; they never let anyone in, they only keep requests out.
- A state-changing request (such a method, on any route but the `READ_POSTS`) must also bring the
  session's CSRF token (`qa_app.web.csrf`: a form field, or the header `X-CSRF-Token`), unless it is
  a Bearer client (a browser never adds that header by itself), or authentication is off and it
  carries no session cookie (a script such as curl: with no cookie there is no session to abuse).

For a new route (e.g. `POST /documents`, `DELETE /documents`):

- Nothing to do for the usual cases: GET needs a reader, POST/DELETE an editor and a CSRF token.
- A GET only editors may see: add its route name to `ROUTE_ROLES` as "editor".
- Inside a view, `require_role(request, "editor")` raises 401/403 (e.g. for one action of several),
  and `principal_of(request)` says who asks (`.name`, `.role`, `.via`).
- Forms: `{{ csrf_field() }}` (first in a multipart form); fetch(): the `X-CSRF-Token` header.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from starlette.datastructures import MutableHeaders
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa_app.auth import Accounts, Principal
from qa_app.auth.accounts import OPEN
from qa_app.errors import Forbidden, Unauthorized
from qa_app.web.csrf import CSRF_HEADER, FormTooLarge, csrf_matches, token_in_body
from qa_app.web.errors import error_response, wants_json

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
SESSION_COOKIE = "qa_session"
PRINCIPAL_KEY = "qa_app.principal"  # where the request's Principal is kept in the ASGI scope
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

PUBLIC = frozenset({"healthz", "static", "openapi", "signin", "signout"})
READ_POSTS = frozenset({"ask", "ask_stream"})  # POST carries the question; it changes nothing
ROUTE_ROLES: dict[str, str] = {}  # route name -> the role every method of it needs, where the default is wrong


def required_role(route: str | None, method: str) -> str | None:
    """The role a request needs: None for a public route; reader or editor for every other one,
    including a path no route matches (so a guess gets 401, not a 404 that confirms nothing is there)."""
    if route in PUBLIC:
        return None
    if route in ROUTE_ROLES:
        return ROUTE_ROLES[route]
    return "reader" if method in SAFE_METHODS or route in READ_POSTS else "editor"


def principal_of(request: Request) -> Principal | None:
    """Who the request acts for (set by AccessControl); None when nobody is signed in."""
    principal: Principal | None = request.scope.get(PRINCIPAL_KEY)
    return principal


def require_role(request: Request, role: str) -> Principal:
    """Raise 401 unless someone is signed in, 403 unless their role includes `role`; returns them."""
    principal = principal_of(request)
    if principal is None:
        raise Unauthorized("sign in, or send 'Authorization: Bearer <token>'")
    if not principal.can(role):
        raise Forbidden(f"this needs the {role} role; {principal.name} is a {principal.role}")
    return principal


def route_name(scope: Scope) -> str | None:
    """The name of the route the router will run for this request (a method mismatch still names it)."""
    app = scope.get("app")
    partial = None
    for route in getattr(getattr(app, "router", None), "routes", []):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return getattr(route, "name", None)
        if match is Match.PARTIAL and partial is None:
            partial = getattr(route, "name", None)
    return partial


def cross_site(request: Request) -> str | None:
    """Why a browser's request comes from another site, if it does."""
    site = request.headers.get("sec-fetch-site")
    if site in ("cross-site", "same-site"):
        return f"Sec-Fetch-Site: {site}"
    if site == "same-origin":
        # The browser's own word (no page can set this header). Chromium sends `Origin: null` with a
        # same-origin form post under `Referrer-Policy: no-referrer`, so Origin cannot be asked then.
        return None
    origin = request.headers.get("origin")
    if origin is not None and (origin == "null" or urlsplit(origin).netloc != request.headers.get("host")):
        return f"Origin: {origin}"
    return None


class AccessControl:
    """Authentication, roles and CSRF for every HTTP request, before any route runs."""

    def __init__(self, app: ASGIApp, accounts: Accounts) -> None:
        self.app = app
        self.accounts = accounts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websocket routes: refuse rather than pass unchecked
            await send({"type": "websocket.close", "code": 1008})
            return
        request = Request(scope)
        enabled = self.accounts.enabled
        principal, problem = self.identify(request, enabled)
        scope[PRINCIPAL_KEY] = principal
        method = request.method
        route = route_name(scope)
        needed = required_role(route, method)
        if needed is not None and enabled:
            if principal is None:
                await self.unauthorized(request, problem)(scope, receive, send)
                return
            if not principal.can(needed):
                response = error_response(request, 403, f"this needs the {needed} role; {principal.name} is a "
                                                        f"{principal.role}")
                await response(scope, receive, send)
                return
        if method not in SAFE_METHODS:
            refusal = cross_site(request)
            bearer = principal is not None and principal.via == "token"
            token_needed = route not in READ_POSTS and not bearer and (enabled or SESSION_COOKIE in request.cookies)
            if refusal is None and token_needed:
                try:
                    given, receive = await self.csrf_token_of(request, receive)
                except FormTooLarge as exc:
                    await error_response(request, 413, str(exc))(scope, receive, send)
                    return
                if not csrf_matches(scope, given):
                    refusal = "no valid CSRF token (reload the page and try again)"
            if refusal is not None:
                await error_response(request, 403, f"request refused: {refusal}")(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def identify(self, request: Request, enabled: bool) -> tuple[Principal | None, str]:
        """Who the request's credentials name, or None and why not."""
        if not enabled:
            return OPEN, ""
        authorization = request.headers.get("authorization")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            principal = self.accounts.from_token(token.strip()) if scheme.lower() == "bearer" else None
            return principal, "" if principal else "the Bearer token is not valid"
        session = request.scope["session"]
        if "user" not in session:
            return None, ""
        principal = self.accounts.from_session(session.get("user"), session.get("v"))
        if principal is None:  # the user was removed or changed their password: end this session
            session.clear()
            return None, "your session has ended; sign in again"
        return principal, ""

    def unauthorized(self, request: Request, problem: str) -> Response:
        """A person's page request goes to the sign-in page; everything else gets a 401 that says how."""
        if request.method in ("GET", "HEAD") and not wants_json(request) and "authorization" not in request.headers:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            root = request.scope.get("root_path", "")
            return RedirectResponse(f"{root}/signin?next={quote(target.removeprefix(root), safe='/')}", status_code=303)
        message = problem or "sign in, or send 'Authorization: Bearer <token>'"
        response = error_response(request, 401, message)
        response.headers["WWW-Authenticate"] = 'Bearer realm="qa_app"'
        return response

    @staticmethod
    async def csrf_token_of(request: Request, receive: Receive) -> tuple[str | None, Receive]:
        header = request.headers.get(CSRF_HEADER)
        if header:
            return header, receive
        return await token_in_body(request.scope, receive)


class Sessions:
    """Starlette's signed-cookie sessions (itsdangerous), HttpOnly and SameSite=Strict, marked Secure
    whenever the request came over HTTPS (directly, or through a proxy uvicorn trusts)."""

    def __init__(self, app: ASGIApp, secret_key: str, max_age_seconds: int) -> None:
        self.app = app
        self.sessions = SessionMiddleware(app, secret_key, session_cookie=SESSION_COOKIE, max_age=max_age_seconds,
                                          same_site="strict")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("scheme") != "https":
            await self.sessions(scope, receive, send)
            return

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                cookies = headers.getlist("set-cookie")
                if cookies:
                    del headers["set-cookie"]
                    for cookie in cookies:
                        secure = cookie.startswith(SESSION_COOKIE + "=") and "; secure" not in cookie.lower()
                        headers.append("set-cookie", cookie + "; secure" if secure else cookie)
            await send(message)

        await self.sessions(scope, receive, send_secure)


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP response (plain ASGI: no extra task per request)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers.setdefault(key, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def describe_policy(routes: Any) -> dict[str, dict[str, str | None]]:
    """route name -> method -> the role it needs (None: public); for tests and docs."""
    table: dict[str, dict[str, str | None]] = {}
    for route in routes:
        methods = sorted(getattr(route, "methods", None) or {"GET"})
        table[route.name] = {m: required_role(route.name, m) for m in methods}
    return table
