"""Users and API tokens, each in a small JSON file, and who a request's credentials name.

- Users (`QA_USERS_FILE`, default `DATA_DIR/users.json`): a name, a role and an argon2id hash of the
  password (argon2-cffi's defaults, RFC 9106's second recommendation: 64 MiB, 3 passes). A password
  is something a person chose, so it needs a slow, memory-hard hash against guessing.
- API tokens (`QA_TOKENS_FILE`, default `DATA_DIR/tokens.json`): a name, a role and the SHA-256 of
  the token. A token is 256 random bits made by `secrets`, so no guessing can find it from its hash,
  and a fast hash lets every API request be checked in microseconds (an argon2 check costs 50 ms
  and 64 MiB). Tokens are compared in constant time, against every stored one.
- `QA_API_TOKEN`, one unnamed token with the reader role, still works for older set-ups.

Both files are written whole to a temporary file of mode 0600 and renamed over the old one, and the
app reads a file again whenever it changed on disk: `qa-app users add` takes effect without a
restart, in every worker.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from qa_app.errors import BadRequest, Conflict, NotFound, SettingsError
from qa_app.settings import Settings

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows): edits are not locked against each other
    fcntl = None  # type: ignore[assignment]

ROLES = ("reader", "editor")  # each role may do what the ones before it may
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD_CHARS = 8
TOKEN_PREFIX = "qa_"
FILE_VERSION = 1


def role_at_least(role: str, needed: str) -> bool:
    """True when `role` may do what `needed` may (an editor may read)."""
    return ROLES.index(role) >= ROLES.index(needed)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}, got {role!r}", field="role")
    return role


def check_name(name: str, what: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise BadRequest(f"a {what} name is 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or "
                         f"digit; got {name!r}", field="name")
    return name


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: a signed-in user, an API token, or anyone (authentication off)."""

    name: str
    role: str
    via: str  # "session", "token" or "open"

    def can(self, role: str) -> bool:
        return role_at_least(self.role, role)


OPEN = Principal("anyone", "editor", "open")  # authentication off: everyone may do everything


def _stored_role(path: Path, record: dict[str, Any]) -> str:
    role = record.get("role")
    if role not in ROLES:  # fail closed: an unknown role grants nothing, and says so
        raise SettingsError(f"{path}: role {role!r} is not one of {', '.join(ROLES)}")
    return str(role)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class _RecordFile:
    """`{"version": 1, KIND: {name: {...}}}` in one file: read again when it changes, written atomically."""

    kind = "records"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._records: dict[str, dict[str, Any]] = {}

    def records(self) -> dict[str, dict[str, Any]]:
        """The file's records, re-read when its inode, time or size changed (a stat a call)."""
        try:
            stat = self.path.stat()
            signature: tuple[int, int, int] | None = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            signature = None
        if signature != self._seen or signature is None:
            self._records = self._read() if signature is not None else {}
            self._seen = signature
        return self._records

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:  # fail closed: a broken file lets nobody in
            raise SettingsError(f"cannot read {self.path}: {exc}") from None
        records = data.get(self.kind) if isinstance(data, dict) else None
        if not isinstance(records, dict) or not all(isinstance(r, dict) for r in records.values()):
            raise SettingsError(f"{self.path} is not a qa_app {self.kind} file (expected {{\"{self.kind}\": {{...}}}})")
        return records

    @contextlib.contextmanager
    def editing(self) -> Iterator[dict[str, dict[str, Any]]]:
        """The records to change in place; written back when the block ends without an error."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)  # two `qa-app users add` at once: neither is lost
            records = dict(self._read())
            yield records
            self._write(records)

    def _write(self, records: dict[str, dict[str, Any]]) -> None:
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")  # mode 0600
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump({"version": FILE_VERSION, self.kind: records}, out, indent=2, sort_keys=True)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str
    created: str = ""

    @property
    def fingerprint(self) -> str:
        """Changes with the password: a session made before a password change is no longer valid."""
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]


class UserFile(_RecordFile):
    """People who sign in on the page."""

    kind = "users"

    def __init__(self, path: Path, hasher: PasswordHasher | None = None) -> None:
        super().__init__(path)
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    def users(self) -> dict[str, User]:
        return {name: User(name, _stored_role(self.path, r), str(r.get("password", "")), str(r.get("created", "")))
                for name, r in self.records().items()}

    def add(self, name: str, password: str, role: str = "reader", *, replace: bool = False) -> User:
        check_name(name, "user")
        check_role(role)
        if len(password) < MIN_PASSWORD_CHARS:
            raise BadRequest(f"the password must have at least {MIN_PASSWORD_CHARS} characters", field="password")
        hashed = self.hasher.hash(password)
        with self.editing() as records:
            if name in records and not replace:
                raise Conflict(f"user {name!r} exists: pass --replace to set a new password or role")
            records[name] = {"role": role, "password": hashed, "created": _now()}
        return User(name, role, hashed)

    def remove(self, name: str) -> None:
        with self.editing() as records:
            if records.pop(name, None) is None:
                raise NotFound(f"no user {name!r} in {self.path}")

    def verify(self, name: str, password: str) -> User | None:
        """The user, if the password is theirs. An unknown name costs the same hash check as a known one,
        so the time taken does not tell which names exist. Slow (about 50 ms): call it off the event loop."""
        user = self.users().get(name)
        if user is None:
            if self._dummy_hash is None:
                self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
            with contextlib.suppress(VerificationError, InvalidHashError):
                self.hasher.verify(self._dummy_hash, password)
            return None
        try:
            self.hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return user


@dataclass(frozen=True)
class ApiToken:
    name: str
    role: str
    sha256: str
    created: str = ""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


class TokenFile(_RecordFile):
    """Named API tokens; only their SHA-256 is kept, so the file does not let anyone in."""

    kind = "tokens"

    def tokens(self) -> dict[str, ApiToken]:
        return {name: ApiToken(name, _stored_role(self.path, r), str(r.get("sha256", "")), str(r.get("created", "")))
                for name, r in self.records().items()}

    def add(self, name: str, role: str = "reader", *, replace: bool = False) -> str:
        """A new token for `name`: returned once, never stored."""
        check_name(name, "token")
        check_role(role)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.editing() as records:
            if name in records and not replace:
                raise Conflict(f"token {name!r} exists: remove it first, or pass --replace to issue a new one")
            records[name] = {"role": role, "sha256": token_digest(token), "created": _now()}
        return token

    def remove(self, name: str) -> None:
        with self.editing() as records:
            if records.pop(name, None) is None:
                raise NotFound(f"no token {name!r} in {self.path}")

    def match(self, token: str) -> ApiToken | None:
        """The stored token this one is, compared in constant time with every stored hash."""
        digest = token_digest(token)
        found = None
        for stored in self.tokens().values():
            if hmac.compare_digest(stored.sha256, digest):
                found = stored
        return found


class Accounts:
    """The users, the tokens, and whether authentication is on (`QA_AUTH`): `on`, `off`, or `auto`,
    on as soon as any user or token exists (checked on every request, so adding the first user turns
    it on in a running app)."""

    def __init__(self, settings: Settings, hasher: PasswordHasher | None = None) -> None:
        self.mode = settings.auth
        self.users = UserFile(settings.users_path, hasher)
        self.tokens = TokenFile(settings.tokens_path)
        self.legacy_token = settings.api_token

    @property
    def enabled(self) -> bool:
        if self.mode != "auto":
            return self.mode == "on"
        return bool(self.legacy_token or self.users.records() or self.tokens.records())

    def describe(self) -> str:
        """One line for the operator: on or off, and why."""
        users, tokens = len(self.users.records()), len(self.tokens.records()) + bool(self.legacy_token)
        counts = f"{users} user{'s' * (users != 1)}, {tokens} API token{'s' * (tokens != 1)}"
        if self.enabled:
            return f"authentication on ({counts}; QA_AUTH={self.mode})"
        why = "QA_AUTH=off" if self.mode == "off" else f"no user or API token in {self.users.path.parent}"
        return f"authentication off ({why})"

    def from_token(self, token: str) -> Principal | None:
        """Who an `Authorization: Bearer` token names, if anyone."""
        legacy = bool(self.legacy_token) and hmac.compare_digest(token.encode("utf-8", "surrogateescape"),
                                                                   self.legacy_token.encode())
        named = self.tokens.match(token)
        if named is not None:
            return Principal(named.name, named.role, "token")
        return Principal("QA_API_TOKEN", "reader", "token") if legacy else None

    def from_session(self, name: Any, fingerprint: Any) -> Principal | None:
        """The user a session names, while they exist and their password is the one they signed in with."""
        user = self.users.users().get(name) if isinstance(name, str) else None
        if user is None or not isinstance(fingerprint, str) or not hmac.compare_digest(user.fingerprint, fingerprint):
            return None
        return Principal(user.name, user.role, "session")
