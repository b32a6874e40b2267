"""The key that signs session cookies: `QA_SECRET_KEY`, else one generated once into the data folder.

Kept in a file (mode 0600) rather than made fresh at each start, so sign-ins survive a restart and
the processes of `serve --workers N` accept each other's cookies. Several processes starting at once
agree on one key: each writes its candidate to a temporary file and links it into place, which
succeeds for the first only; the others read the winner's.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

from qa_app.errors import SettingsError
from qa_app.settings import Settings

KEY_FILE = "secret_key"
MIN_KEY_CHARS = 32


def session_secret(settings: Settings) -> str:
    """The signing key for this app's sessions."""
    if settings.secret_key:
        if len(settings.secret_key) < MIN_KEY_CHARS:
            raise SettingsError(f"QA_SECRET_KEY must have at least {MIN_KEY_CHARS} characters "
                                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')")
        return settings.secret_key
    return _key_file(settings.data_path / KEY_FILE)


def _key_file(path: Path) -> str:
    try:
        key = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        key = ""
    except (OSError, UnicodeError) as exc:
        raise SettingsError(f"cannot read the session key {path}: {exc}") from None
    if len(key) >= MIN_KEY_CHARS:
        return key
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
        try:
            with os.fdopen(handle, "w", encoding="ascii") as out:
                out.write(secrets.token_urlsafe(48) + "\n")
                out.flush()
                os.fsync(out.fileno())
            if key:  # a short or empty file (a crash mid-write long ago): replace it
                os.replace(temporary, path)
            else:
                with contextlib.suppress(FileExistsError):  # another process won the race: use its key
                    os.link(temporary, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        key = path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise SettingsError(f"cannot create the session key {path} (set QA_DATA_DIR to a writable folder, or "
                            f"QA_SECRET_KEY): {exc}") from None
    return key
