"""Who may reach what, over the real app and a real collection: every route x every kind of
credential, CSRF, the session cookie, and the sign-in slow-down."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import itsdangerous
import pytest
from argon2 import PasswordHasher
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from qa_app.auth import Accounts, SignInThrottle, TokenFile, UserFile, session_secret
from qa_app.embedding.encoder import DenseEncoder
from qa_app.settings import Settings
from qa_app.web import create_app
from qa_app.web.security import SESSION_COOKIE, route_name
from tests.conftest import make_pipeline

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # the real argon2id, cheap parameters
PASSWORDS = {"reader1": "reader password", "editor1": "editor password"}
CREDENTIALS = ("none", "wrong token", "reader token", "editor token", "reader session", "editor session",
               "forged cookie", "expired cookie")
NOBODY = ("none", "wrong token", "forged cookie", "expired cookie")
SOURCE = "/source/{volcanoes}"  # filled in with the loaded file's path
OK, SEE_OTHER, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, METHOD = 200, 303, 401, 403, 404, 405

# (method, path, form or JSON body) -> the status for each of CREDENTIALS, in order. A person's page
# request without credentials goes to the sign-in page (303); an API request gets 401. `/change` is a
# route this test adds with no access rule of its own: the defaults (reader for GET, editor and a
# CSRF token for POST and DELETE) are what a new route such as POST /documents gets.
MATRIX: dict[tuple[str, str], tuple[int, ...]] = {
    ("GET", "/?q=volcano"):                (303, 401, 200, 200, 200, 200, 303, 303),
    ("GET", "/corpus"):                    (303, 401, 200, 200, 200, 200, 303, 303),
    ("GET", SOURCE):                       (303, 401, 200, 200, 200, 200, 303, 303),
    ("GET", "/ask?q=volcano"):             (401, 401, 200, 200, 200, 200, 401, 401),
    ("POST", "/ask"):                      (401, 401, 200, 200, 200, 200, 401, 401),
    ("GET", "/ask/stream?q=volcano"):      (401, 401, 200, 200, 200, 200, 401, 401),
    ("POST", "/ask/stream"):               (401, 401, 200, 200, 200, 200, 401, 401),
    ("GET", "/corpus.json"):               (401, 401, 200, 200, 200, 200, 401, 401),
    ("GET", "/no/such/page"):              (303, 401, 404, 404, 404, 404, 303, 303),
    ("GET", "/change"):                    (303, 401, 200, 200, 200, 200, 303, 303),
    ("POST", "/change"):                   (401, 401, 403, 200, 403, 200, 401, 401),
    ("DELETE", "/change"):                 (401, 401, 403, 200, 403, 200, 401, 401),
    # Uploads and removal need an editor (the editor's form here holds no file: 400); the page view a reader.
    ("POST", "/documents"):                (401, 401, 403, 400, 403, 400, 401, 401),
    ("DELETE", "/documents"):              (401, 401, 403, 400, 403, 400, 401, 401),
    ("POST", "/documents/remove"):         (401, 401, 403, 400, 403, 400, 401, 401),
    ("GET", "/page/no/such.pdf?page=1"):   (303, 401, 404, 404, 404, 404, 303, 303),
    ("GET", "/page-image/no/such.pdf?page=1"): (303, 401, 404, 404, 404, 404, 303, 303),
    ("GET", "/healthz"):                   (200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/openapi.json"):              (200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/static/style.css"):          (200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/static/app.js"):             (200, 200, 200, 200, 200, 200, 200, 200),
    ("GET", "/signin"):                    (200, 200, 200, 200, 303, 303, 200, 200),
    ("POST", "/signin"):                   (403, 403, 401, 401, 401, 401, 403, 403),
    ("POST", "/signout"):                  (403, 403, 303, 303, 303, 303, 403, 403),
    ("GET", "/signout"):                   (405, 405, 405, 405, 405, 405, 405, 405),
}


async def change(request: Request) -> Response:
    """A state-changing route with no access rule of its own; echoes the size of the body it got."""
    return JSONResponse({"ok": True, "method": request.method, "bytes": len(await request.body())})


@dataclass
class Site:
    client: TestClient
    settings: Settings
    headers: dict[str, dict[str, str]]  # credential -> the headers that carry it
    csrf: dict[str, str]  # session credential -> its CSRF token
    source: str
    passages: list[str]
    cookies: dict[str, str]  # session credential -> the raw cookie value


def session_cookie(client: TestClient, name: str) -> tuple[str, str]:
    """Sign `name` in through the form; the session cookie's value and the session's CSRF token."""
    client.cookies.clear()
    form = client.get("/signin")
    token = csrf_in(form.text)
    signed = client.post("/signin", data={"csrf_token": token, "username": name, "password": PASSWORDS[name],
                                          "next": "/"}, follow_redirects=False)
    assert signed.status_code == 303, signed.text
    cookie = client.cookies[SESSION_COOKIE]
    page = client.get("/corpus")
    client.cookies.clear()
    return cookie, csrf_in(page.text)


def csrf_in(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html) or re.search(r'name="csrf_token" value="([^"]+)"',
                                                                                  html)
    assert match, html[:500]
    return match.group(1)


class PastSigner(itsdangerous.TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 13 * 3600  # past QA_SESSION_HOURS (12)


def signed_session(key: str, data: dict[str, Any], signer: type[itsdangerous.TimestampSigner]) -> str:
    payload = base64.b64encode(json.dumps(data).encode())
    return signer(key).sign(payload).decode()


@pytest.fixture(scope="module")
def site(loaded: Settings, encoder: DenseEncoder, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    settings = loaded.replace(data_dir=str(tmp_path_factory.mktemp("auth")))
    users = UserFile(settings.users_path, FAST)
    users.add("reader1", PASSWORDS["reader1"], "reader")
    users.add("editor1", PASSWORDS["editor1"], "editor")
    tokens = TokenFile(settings.tokens_path)
    reader_token, editor_token = tokens.add("api-reader", "reader"), tokens.add("api-editor", "editor")
    app = create_app(settings, make_pipeline(settings, encoder), accounts=Accounts(settings, FAST))
    app.router.routes.append(Route("/change", change, methods=["GET", "POST", "DELETE"], name="change"))
    with TestClient(app) as client:
        cookies, csrf = {}, {}
        for credential, name in [("reader session", "reader1"), ("editor session", "editor1")]:
            cookies[credential], csrf[credential] = session_cookie(client, name)
        editor = users.users()["editor1"]
        session = {"user": "editor1", "v": editor.fingerprint, "csrf": csrf["editor session"]}
        cookies["forged cookie"] = signed_session("not the key" * 4, session, itsdangerous.TimestampSigner)
        cookies["expired cookie"] = signed_session(session_secret(settings), session, PastSigner)
        headers = {"none": {}, "wrong token": {"Authorization": "Bearer qa_wrong"},
                   "reader token": {"Authorization": f"Bearer {reader_token}"},
                   "editor token": {"Authorization": f"Bearer {editor_token}"},
                   **{c: {"Cookie": f"{SESSION_COOKIE}={v}"} for c, v in cookies.items()}}
        authorized = headers["reader token"]
        corpus = client.get("/corpus.json", headers=authorized).json()
        source = next(s for s in corpus["sources"] if s.endswith("volcanoes.md"))
        passages: set[str] = set()
        for question in ["volcano", "train speed record", "octopus hearts", "bread", "special characters"]:
            found = client.post("/ask", json={"question": question, "top_k": 50}, headers=authorized).json()
            passages |= {p["text"] for p in found["passages"]}
        yield Site(client, settings, headers, csrf, source, sorted(passages), cookies)


def send(site: Site, method: str, path: str, credential: str, **extra: Any) -> Any:
    """One request with one credential, and the CSRF token a session's page would send with it."""
    site.client.cookies.clear()
    headers = dict(site.headers[credential])
    path = path.replace(SOURCE, "/source" + site.source)
    kwargs: dict[str, Any] = {}
    if method != "GET":
        token = site.csrf.get(credential, site.csrf["editor session"])  # forged/expired carry a real token
        if path == "/signin":
            kwargs["data"] = {"csrf_token": token, "username": "nobody", "password": "wrong password"}
        elif path.startswith(("/ask", "/change")):
            kwargs["json"] = {"question": "volcano"}
            headers["X-CSRF-Token"] = token
        else:
            kwargs["data"] = {"csrf_token": token}
    return site.client.request(method, path, headers={**headers, **extra}, follow_redirects=False, **kwargs)


def leaked(site: Site, text: str) -> list[str]:
    """Passages (or their starts) that appear in `text`."""
    return [p[:60] for p in site.passages if p[:60] in text or (len(p) > 120 and p[60:120] in text)]


@pytest.mark.parametrize("request_line", list(MATRIX), ids=[f"{m} {p}" for m, p in MATRIX])
def test_authorization_matrix(site: Site, request_line: tuple[str, str]) -> None:
    method, path = request_line
    got = {}
    for credential in CREDENTIALS:
        response = send(site, method, path, credential)
        got[credential] = response.status_code
        if response.status_code >= 300 or credential in NOBODY:
            assert leaked(site, response.text) == [], (credential, response.status_code)
        if response.status_code == 303 and path != "/signout" and credential in NOBODY:
            assert response.headers["location"].startswith("/signin?next=")
        if response.status_code == 401:
            assert response.headers["www-authenticate"].startswith("Bearer")
            if response.headers["content-type"].startswith("application/json"):
                assert response.json()["ok"] is False
    assert got == dict(zip(CREDENTIALS, MATRIX[request_line], strict=True))


def test_the_matrix_covers_every_route_of_the_app(site: Site) -> None:
    def name(method: str, path: str) -> str | None:
        path = path.replace(SOURCE, "/source" + site.source).split("?")[0]
        scope = {"type": "http", "method": method, "path": path, "root_path": "", "app": site.client.app}
        return route_name(scope)

    covered = {name(method, path) for method, path in MATRIX}
    assert {route.name for route in site.client.app.routes} <= covered  # type: ignore[attr-defined]


def test_allowed_responses_hold_the_passages(site: Site) -> None:
    """The other side of the matrix: what is refused to others is there for the signed in."""
    page = send(site, "GET", "/?q=volcano", "reader session")
    assert "Mauna Loa" in page.text
    stream = send(site, "GET", "/ask/stream?q=volcano", "reader session")
    assert "event: passages" in stream.text  # the page's own answer stream runs on the session cookie
    assert send(site, "GET", "/ask/stream?q=volcano", "none", **{"Sec-Fetch-Site": "same-origin"}).status_code == 401


def test_a_signed_in_person_sees_who_they_are_and_can_sign_out(site: Site) -> None:
    page = send(site, "GET", "/", "editor session")
    assert "editor1" in page.text and "Sign out" in page.text
    out = send(site, "POST", "/signout", "editor session")
    assert out.status_code == 303 and out.headers["location"].endswith("/signin")
    value = out.headers["set-cookie"].split(";")[0].removeprefix(f"{SESSION_COOKIE}=")
    after = json.loads(base64.b64decode(value.split(".")[0]))
    assert "user" not in after and after["csrf"] != site.csrf["editor session"]  # a new token, nobody signed in


def test_cross_site_and_tokenless_posts_are_refused(site: Site) -> None:
    for credential in ("editor session", "editor token"):
        for header in ({"Origin": "https://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"},
                       {"Sec-Fetch-Site": "same-site"}):
            refused = send(site, "POST", "/change", credential, **header)
            assert refused.status_code == 403 and "request refused" in refused.json()["error"], (credential, header)
    same_origin = send(site, "POST", "/change", "editor session", Origin="http://testserver",
                       **{"Sec-Fetch-Site": "same-origin"})
    assert same_origin.status_code == 200
    site.client.cookies.clear()
    cookie = site.headers["editor session"]
    no_token = site.client.post("/change", json={}, headers=cookie)
    wrong_token = site.client.post("/change", json={}, headers={**cookie, "X-CSRF-Token": "guess"})
    other_session = site.client.post("/change", json={}, headers={**cookie, "X-CSRF-Token": site.csrf["reader session"]})
    for response in (no_token, wrong_token, other_session):
        assert response.status_code == 403 and "CSRF" in response.json()["error"]
    # A cross-site form post of the sign-in form (login CSRF) is refused too.
    assert send(site, "POST", "/signin", "none", Origin="https://evil.example").status_code == 403


def test_a_form_post_brings_its_token_in_a_field_and_an_upload_streams_on(site: Site) -> None:
    site.client.cookies.clear()
    cookie, token = site.headers["editor session"], site.csrf["editor session"]
    form = site.client.post("/change", data={"csrf_token": token, "x": "1"}, headers=cookie)
    assert form.status_code == 200
    upload = site.client.post("/change", headers=cookie, data={"csrf_token": token},
                              files={"files": ("big.md", b"# big\n" + b"x" * 2_000_000)})
    assert upload.status_code == 200 and upload.json()["bytes"] > 2_000_000
    body = (b'--B\r\nContent-Disposition: form-data; name="files"; filename="a.md"\r\n\r\n# a\r\n'
            b'--B\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n' + token.encode() + b"\r\n--B--\r\n")
    late = site.client.post("/change", content=body,
                            headers={**cookie, "Content-Type": "multipart/form-data; boundary=B"})
    assert late.status_code == 403  # the token must be the first field of a multipart form


def test_the_session_cookie_is_signed_httponly_strict_and_secure_over_https(site: Site) -> None:
    app = site.client.app
    for base, secure in [("http://testserver", False), ("https://testserver", True)]:
        with TestClient(app, base_url=base) as client:
            form = client.get("/signin")
            signed = client.post("/signin", data={"csrf_token": csrf_in(form.text), "username": "reader1",
                                                  "password": PASSWORDS["reader1"]}, follow_redirects=False)
            assert signed.status_code == 303
            cookie = signed.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
            assert "max-age=43200" in cookie and ("; secure" in cookie) is secure
            value = client.cookies[SESSION_COOKIE]
            client.cookies.clear()
            tampered = value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB")
            assert client.get("/corpus.json", headers={"Cookie": f"{SESSION_COOKIE}={tampered}"}).status_code == 401
            payload, rest = value.split(".", 1)
            data = json.loads(base64.b64decode(payload))
            data["user"] = "editor1"  # change who the cookie names, keep the signature
            edited = base64.b64encode(json.dumps(data).encode()).decode() + "." + rest
            assert client.get("/corpus.json", headers={"Cookie": f"{SESSION_COOKIE}={edited}"}).status_code == 401


def test_signing_in_returns_to_the_page_asked_for_and_never_off_site(site: Site) -> None:
    site.client.cookies.clear()
    first = site.client.get("/corpus?x=1", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/signin?next=/corpus%3Fx%3D1"
    form = site.client.get(first.headers["location"])
    assert 'value="/corpus?x=1"' in form.text
    back = site.client.post("/signin", data={"csrf_token": csrf_in(form.text), "username": "reader1",
                                             "password": PASSWORDS["reader1"], "next": "//evil.example/x"},
                            follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"] == "/"
    site.client.cookies.clear()


def test_a_link_from_another_site_reloads_the_sign_in_page_once(site: Site) -> None:
    site.client.cookies.clear()
    cross = site.client.get("/signin?next=/corpus", headers={"Sec-Fetch-Site": "cross-site"})
    assert '<meta http-equiv="refresh" content="0">' in cross.text  # then the Strict cookie is sent
    assert "http-equiv" not in site.client.get("/signin", headers={"Sec-Fetch-Site": "same-origin"}).text


def test_removing_a_user_ends_their_session(site: Site) -> None:
    users = UserFile(site.settings.users_path, FAST)
    users.add("temp1", "temporary password", "reader")
    client = site.client
    client.cookies.clear()
    form = client.get("/signin")
    client.post("/signin", data={"csrf_token": csrf_in(form.text), "username": "temp1",
                                 "password": "temporary password"}, follow_redirects=False)
    assert client.get("/corpus.json").status_code == 200
    users.remove("temp1")
    ended = client.get("/corpus.json")
    assert ended.status_code == 401 and "session has ended" in ended.json()["error"]
    assert "1970" in ended.headers["set-cookie"]  # the stale cookie is deleted
    client.cookies.clear()


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def test_failed_sign_ins_slow_down_per_name_and_per_address(site: Site, encoder: DenseEncoder) -> None:
    clock = Clock()
    settings = site.settings
    app = create_app(settings, make_pipeline(settings, encoder), accounts=Accounts(settings, FAST),
                     throttle=SignInThrottle(clock))

    def attempt(client: TestClient, name: str, password: str) -> Any:
        form = client.get("/signin")
        return client.post("/signin", data={"csrf_token": csrf_in(form.text), "username": name, "password": password},
                           follow_redirects=False)

    with TestClient(app) as client:
        statuses = [attempt(client, "editor1", f"guess {i}").status_code for i in range(5)]
        assert statuses == [401] * 5
        locked = attempt(client, "editor1", PASSWORDS["editor1"])  # even the right password, while locked
        assert locked.status_code == 429 and locked.headers["retry-after"] == "1"
        assert "Too many failed sign-ins" in locked.text
        clock.now += 1
        assert attempt(client, "editor1", "guess 6").status_code == 401
        again = attempt(client, "editor1", PASSWORDS["editor1"])
        assert again.status_code == 429 and again.headers["retry-after"] == "2"  # doubled
        clock.now += 2
        assert attempt(client, "editor1", PASSWORDS["editor1"]).status_code == 303

    with TestClient(app, client=("10.9.8.7", 1234)) as other:  # one address trying many names
        assert [attempt(other, f"name{i}", "guess").status_code for i in range(5)] == [401] * 5
        assert attempt(other, "reader1", PASSWORDS["reader1"]).status_code == 429
    with TestClient(app, client=("10.9.8.8", 1234)) as fresh:  # another address, same name: fine
        assert attempt(fresh, "reader1", PASSWORDS["reader1"]).status_code == 303


def test_authentication_off_lets_scripts_post_but_not_other_sites(loaded: Settings, encoder: DenseEncoder,
                                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    settings = loaded.replace(data_dir=str(tmp_path_factory.mktemp("open")))
    app = create_app(settings, make_pipeline(settings, encoder))
    app.router.routes.append(Route("/change", change, methods=["POST"], name="change"))
    with TestClient(app) as client:
        assert client.get("/?q=volcano").status_code == 200  # sets the session cookie (CSRF token)
        token = csrf_in(client.get("/").text)
        assert client.post("/change", json={}).status_code == 403  # a cookie-bearing browser needs the token
        assert client.post("/change", json={}, headers={"X-CSRF-Token": token}).status_code == 200
        client.cookies.clear()
        assert client.post("/change", json={}).status_code == 200  # a script: no cookie, no session to abuse
        assert client.post("/change", json={}, headers={"Origin": "http://evil.example"}).status_code == 403
        assert client.post("/ask", json={"question": "volcano"}).status_code == 200
        assert client.get("/signin", follow_redirects=False).status_code == 303  # nothing to sign in to
