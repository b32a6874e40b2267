"""Users, tokens, the session key, the sign-in slow-down and the CLI that edits them: no HTTP, no Milvus."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import click
import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner

from qa_app.auth import Accounts, SignInThrottle, TokenFile, UserFile, session_secret
from qa_app.auth.throttle import FREE_FAILURES, MAX_LOCK_SECONDS
from qa_app.cli import check_exposure, cli
from qa_app.errors import BadRequest, Conflict, NotFound, SettingsError
from qa_app.settings import Settings
from qa_app.web.csrf import token_in_body
from qa_app.web.signin import safe_next

pytestmark = pytest.mark.unit
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # the real argon2id, cheap parameters


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def settings_in(folder: Path, **changes: Any) -> Settings:
    return Settings(data_dir=str(folder), **changes)


def test_users_are_stored_with_argon2id_hashes_in_a_private_file(tmp_path: Path) -> None:
    users = UserFile(tmp_path / "users.json", FAST)
    users.add("alice", "correct horse", "editor")
    text = (tmp_path / "users.json").read_text()
    assert "correct horse" not in text and "$argon2id$" in text
    assert mode_of(tmp_path / "users.json") == 0o600
    assert users.verify("alice", "correct horse") is not None
    assert users.verify("alice", "wrong horse") is None and users.verify("nobody", "correct horse") is None
    assert users.users()["alice"].role == "editor"


def test_adding_a_user_checks_name_role_password_and_duplicates(tmp_path: Path) -> None:
    users = UserFile(tmp_path / "users.json", FAST)
    users.add("bob", "12345678")
    with pytest.raises(Conflict, match="--replace"):
        users.add("bob", "another password")
    old = users.users()["bob"].fingerprint
    users.add("bob", "another password", "editor", replace=True)
    assert users.users()["bob"].fingerprint != old and users.users()["bob"].role == "editor"
    for name, password, role, error in [("bad name", "12345678", "reader", "name"), ("carol", "short", "reader", "8"),
                                        ("carol", "12345678", "admin", "role")]:
        with pytest.raises(BadRequest, match=error):
            users.add(name, password, role)
    users.remove("bob")
    with pytest.raises(NotFound):
        users.remove("bob")


def test_a_broken_users_file_lets_nobody_in(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text("{not json")
    with pytest.raises(SettingsError, match="cannot read"):
        UserFile(path).users()
    path.write_text(json.dumps({"users": {"eve": {"role": "admin", "password": "x"}}}))
    with pytest.raises(SettingsError, match="role 'admin'"):
        UserFile(path).users()


def test_tokens_are_kept_only_as_sha256_and_shown_once(tmp_path: Path) -> None:
    tokens = TokenFile(tmp_path / "tokens.json")
    token = tokens.add("ci", "editor")
    assert token.startswith("qa_") and len(token) > 40
    stored = (tmp_path / "tokens.json").read_text()
    assert token not in stored and hashlib.sha256(token.encode()).hexdigest() in stored
    assert mode_of(tmp_path / "tokens.json") == 0o600
    found = tokens.match(token)
    assert found is not None and (found.name, found.role) == ("ci", "editor")
    assert tokens.match(token[:-1]) is None and tokens.match("") is None
    tokens.remove("ci")
    assert tokens.match(token) is None


def test_files_are_read_again_when_they_change(tmp_path: Path) -> None:
    accounts = Accounts(settings_in(tmp_path), FAST)
    assert not accounts.enabled  # auto, nothing configured
    UserFile(accounts.users.path, FAST).add("alice", "12345678")  # another process: the CLI
    assert accounts.enabled and accounts.from_session("alice", accounts.users.users()["alice"].fingerprint)
    UserFile(accounts.users.path, FAST).remove("alice")
    assert not accounts.enabled and accounts.from_session("alice", "anything") is None


@pytest.mark.parametrize("mode,users,legacy,enabled", [
    ("auto", False, "", False), ("auto", True, "", True), ("auto", False, "s3cret", True),
    ("on", False, "", True), ("off", True, "s3cret", False),
])
def test_auth_on_or_off(tmp_path: Path, mode: str, users: bool, legacy: str, enabled: bool) -> None:
    settings = settings_in(tmp_path, auth=mode, api_token=legacy)
    if users:
        UserFile(settings.users_path, FAST).add("alice", "12345678")
    assert Accounts(settings, FAST).enabled is enabled


def test_the_legacy_token_is_one_unnamed_reader_token(tmp_path: Path) -> None:
    accounts = Accounts(settings_in(tmp_path, api_token="s3cret"), FAST)
    principal = accounts.from_token("s3cret")
    assert principal is not None and (principal.name, principal.role, principal.via) == ("QA_API_TOKEN", "reader", "token")
    assert accounts.from_token("s3cre") is None and accounts.from_token("s3cret ") is None


def test_a_session_ends_when_the_password_changes(tmp_path: Path) -> None:
    accounts = Accounts(settings_in(tmp_path), FAST)
    accounts.users.add("alice", "12345678")
    before = accounts.users.users()["alice"].fingerprint
    assert accounts.from_session("alice", before) is not None
    accounts.users.add("alice", "new password", replace=True)
    assert accounts.from_session("alice", before) is None
    assert accounts.from_session(["alice"], before) is None  # a session value of the wrong type


def test_the_session_key_is_made_once_private_and_shared(tmp_path: Path) -> None:
    settings = settings_in(tmp_path / "data")
    keys: list[str] = []
    threads = [threading.Thread(target=lambda: keys.append(session_secret(settings))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(keys)) == 1 and len(keys[0]) >= 32  # every process that starts at once agrees
    assert mode_of(tmp_path / "data" / "secret_key") == 0o600
    assert session_secret(settings) == keys[0]  # a restart keeps it: sessions survive
    assert session_secret(settings.replace(secret_key="k" * 40)) == "k" * 40
    with pytest.raises(SettingsError, match="at least 32"):
        session_secret(settings.replace(secret_key="short"))


def test_the_throttle_locks_a_key_exponentially_after_the_free_failures() -> None:
    now = [1000.0]
    throttle = SignInThrottle(clock=lambda: now[0])
    keys = ["name:alice", "address:10.0.0.1"]
    for _ in range(FREE_FAILURES - 1):
        throttle.failed(keys)
        assert throttle.retry_after(keys) == 0
    waits = []
    for _ in range(4):
        throttle.failed(keys)
        waits.append(throttle.retry_after(keys))
        now[0] += waits[-1]  # wait it out, then fail again
        assert throttle.retry_after(keys) == 0
    assert waits == [1.0, 2.0, 4.0, 8.0]
    for _ in range(30):
        throttle.failed(keys)
    assert throttle.retry_after(keys) == MAX_LOCK_SECONDS
    throttle.succeeded("name:alice")  # signing in clears the name, not the address
    assert throttle.retry_after(["name:alice"]) == 0 and throttle.retry_after(["address:10.0.0.1"]) > 0
    now[0] += 3600 + MAX_LOCK_SECONDS
    assert throttle.retry_after(keys) == 0  # forgotten an hour after the last failure


def test_next_after_sign_in_stays_on_this_site() -> None:
    assert safe_next("/ask?q=x") == "/ask?q=x"
    for bad in ["//evil.example/", "https://evil.example/", "/\\evil.example", "", None, "/\nSet-Cookie: x", "ask"]:
        assert safe_next(bad) == "/"


def body_receive(body: bytes, pieces: int = 3) -> Any:
    size = max(1, len(body) // pieces)
    chunks = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return receive


def multipart(*parts: tuple[str, str | None, bytes]) -> bytes:
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += b"--XyZ\r\nContent-Disposition: " + disposition.encode() + b"\r\n\r\n" + content + b"\r\n"
    return out + b"--XyZ--\r\n"


async def read_all(receive: Any) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body


@pytest.mark.parametrize("content_type,body,token", [
    ("application/x-www-form-urlencoded", b"username=a&csrf_token=T0K%2Bn&next=%2F", "T0K+n"),
    ("multipart/form-data; boundary=XyZ", multipart(("csrf_token", None, b"T0Ken"), ("files", "a.md", b"x" * 300_000)),
     "T0Ken"),
    ("multipart/form-data; boundary=XyZ", multipart(("files", "a.md", b"# hi"), ("csrf_token", None, b"T0Ken")), None),
    ("multipart/form-data; boundary=XyZ", b"garbage", None),
    ("application/json", b'{"csrf_token": "T0Ken"}', None),
])
def test_the_csrf_field_is_read_and_the_body_handed_on_whole(content_type: str, body: bytes, token: str | None) -> None:
    scope = {"type": "http", "headers": [(b"content-type", content_type.encode())]}

    async def check() -> None:
        found, receive = await token_in_body(scope, body_receive(body, pieces=7))
        assert found == token
        assert await read_all(receive) == body  # the view reads what the client sent

    asyncio.run(check())


def test_users_and_tokens_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(tmp_path)]
    added = runner.invoke(cli, ["users", "add", "alice", "--role", "editor", "--password-stdin", *data],
                          input="correct horse\n")
    assert added.exit_code == 0, added.output
    prompted = runner.invoke(cli, ["users", "add", "bob", *data], input="12345678\n12345678\n")
    assert prompted.exit_code == 0, prompted.output
    mismatch = runner.invoke(cli, ["users", "add", "carol", *data], input="12345678\n87654321\n")
    assert mismatch.exit_code != 0
    listed = runner.invoke(cli, ["users", "list", *data])
    assert [line.split("\t")[:2] for line in listed.output.splitlines()] == [["alice", "editor"], ["bob", "reader"]]
    assert UserFile(tmp_path / "users.json").verify("alice", "correct horse") is not None
    again = runner.invoke(cli, ["users", "add", "alice", "--password-stdin", *data], input="correct horse\n")
    assert again.exit_code == 1 and "exists" in again.output
    assert runner.invoke(cli, ["users", "remove", "bob", *data]).exit_code == 0
    assert runner.invoke(cli, ["users", "remove", "bob", *data]).exit_code == 1

    made = runner.invoke(cli, ["tokens", "add", "ci", *data])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert TokenFile(tmp_path / "tokens.json").match(token) is not None
    assert token not in runner.invoke(cli, ["tokens", "list", *data]).output
    assert runner.invoke(cli, ["tokens", "remove", "ci", *data]).exit_code == 0
    assert TokenFile(tmp_path / "tokens.json").match(token) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "myhost.example"])
def test_serving_a_network_with_authentication_off_needs_public(tmp_path: Path, host: str) -> None:
    settings = settings_in(tmp_path, host=host)
    with pytest.raises(click.ClickException, match="authentication off.*--public"):
        check_exposure(settings, public=False)
    check_exposure(settings, public=True)  # said on purpose
    UserFile(settings.users_path, FAST).add("alice", "12345678")
    check_exposure(settings, public=False)  # authentication is on now


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_serving_loopback_with_authentication_off_is_fine(tmp_path: Path, host: str) -> None:
    check_exposure(settings_in(tmp_path, host=host), public=False)


def test_the_serve_command_refuses_0000_with_authentication_off(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "refusing to serve on 0.0.0.0 with authentication off" in result.output
    assert "--public" in result.output


def test_auth_on_without_anyone_to_let_in_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(click.ClickException, match="nobody could get in"):
        check_exposure(settings_in(tmp_path, auth="on"), public=False)


def test_the_data_folder_default_is_relative_and_files_sit_in_it() -> None:
    settings = Settings()
    assert settings.users_path == Path("qa_data/users.json") and settings.tokens_path == Path("qa_data/tokens.json")
    assert Settings(users_file="/etc/qa/users.json").users_path == Path("/etc/qa/users.json")
    assert os.sep not in settings.data_dir
