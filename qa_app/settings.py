"""Every setting declared once: name, default, help and allowed values, read from `QA_*` variables.

`load_settings(os.environ)` is the only place the environment is read; CLI flags override it with
`Settings.replace(...)`, and the app gets the result as an argument.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa_app.errors import SettingsError

ENV_PREFIX = "QA_"


def _setting(default: Any, help: str, *, choices: tuple[str, ...] = (), zero: bool = False,
             at_most: float | None = None) -> Any:
    """A settings field. Numbers must be positive, or at least 0 with `zero`, and at most `at_most`."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "zero": zero,
                                                        "at_most": at_most})


@dataclass(frozen=True)
class Settings:
    milvus_uri: str = _setting("qa_app.db", "Milvus URI: a local .db file (Milvus Lite) or http://host:19530")
    milvus_token: str = _setting("", "Token for a Milvus server (user:password or an API key)")
    collection: str = _setting("passages", "Collection name")
    model: str = _setting("all-MiniLM-L6-v2", "Dense embedding model: a packaged name, a folder, or a hub id")
    precision: str = _setting("auto", "Embedding arithmetic: fp32, bf16 (torch) or int8 (OpenVINO or ONNX Runtime); "
                                      "auto tries bf16 first on CPUs with AMX, else int8 (then bf16 where the CPU "
                                      "multiplies bf16 in hardware), and keeps the first that a start-up self-test "
                                      "finds in agreement with fp32",
                              choices=("auto", "fp32", "bf16", "int8"))
    chunk_tokens: int = _setting(200, "Most word pieces of body text in one passage")
    chunk_overlap: int = _setting(32, "Word pieces repeated from the end of one passage at the start of the next",
                                  zero=True)
    top_k: int = _setting(5, "Passages returned by default")
    max_top_k: int = _setting(50, "Largest top_k a request may ask for")
    candidates: int = _setting(50, "Candidates fetched from each retriever before fusion")
    fusion: str = _setting("rrf", "How hybrid mode fuses the two lists: rrf (Milvus hybrid_search with RRFRanker) "
                                  "or weighted (scaled scores, in the app)", choices=("rrf", "weighted"))
    dense_weight: float = _setting(0.6, "Weighted fusion: the dense list's share, 0 to 1 (the keyword list gets "
                                        "the rest)", zero=True, at_most=1)
    rrf_k: int = _setting(10, "The k of reciprocal-rank fusion: larger flattens the rank curve")
    timeout: float = _setting(10.0, "Seconds allowed for each Milvus call")
    encode_batch: int = _setting(32, "Passages per model call while loading")
    insert_batch: int = _setting(256, "Passages per Milvus insert")
    watch_interval: float = _setting(5.0, "Seconds between looks at the files `serve --watch` keeps loaded")
    host: str = _setting("127.0.0.1", "Address the web server binds to")
    port: int = _setting(8000, "Port the web server listens on")
    max_question_chars: int = _setting(1000, "Longest question accepted")
    max_filter_chars: int = _setting(500, "Longest filter value accepted")
    api_token: str = _setting("", "One unnamed API token (reader role), kept for compatibility: clients send "
                                  "`Authorization: Bearer <token>`; `qa-app tokens add NAME` makes named ones")
    auth: str = _setting("auto", "Authentication: on, off, or auto (on when any user or API token is configured)",
                         choices=("auto", "on", "off"))
    data_dir: str = _setting("qa_data", "Folder for the app's own files: users, API tokens, the session key, uploads")
    max_upload_mb: float = _setting(50.0, "Largest file an upload may bring, in MB (kept under DATA_DIR/uploads/CORPUS/)")
    max_upload_files: int = _setting(20, "Most files one upload may bring")
    users_file: str = _setting("", "Users and their argon2 password hashes (default: DATA_DIR/users.json)")
    tokens_file: str = _setting("", "Named API tokens, stored as SHA-256 hashes (default: DATA_DIR/tokens.json)")
    secret_key: str = _setting("", "Key that signs session cookies (default: generated once into "
                                   "DATA_DIR/secret_key, mode 0600)")
    session_hours: float = _setting(12.0, "Hours a sign-in lasts")
    llm_url: str = _setting("", "OpenAI-compatible server, e.g. http://127.0.0.1:8011/v1; empty: extracted "
                                "answers only")
    llm_model: str = _setting("qwen2.5-coder-1.5b", "Model name sent to the LLM server")
    llm_api_key: str = _setting("", "Bearer token for the LLM server")
    llm_connect_timeout: float = _setting(5.0, "Seconds to connect to the LLM server")
    llm_read_timeout: float = _setting(60.0, "Seconds the LLM may stay silent while streaming")
    llm_max_tokens: int = _setting(384, "Longest generated answer, in tokens")
    llm_temperature: float = _setting(0.0, "Sampling temperature; 0 is the most repeatable", zero=True)
    llm_context_tokens: int = _setting(2500, "Prompt budget: lowest-ranked passages are dropped to fit")
    answer_floor: float = _setting(0.35, "Below this cosine similarity of the best passage, say the documents do "
                                         "not answer", zero=True)
    claim_dense: float = _setting(0.5, "A generated sentence is supported by a passage it cites when their cosine "
                                       "similarity is at least this (and the word overlap holds)", zero=True, at_most=1)
    claim_overlap: float = _setting(0.4, "... and at least this share of the sentence's content words are in the "
                                         "passage", zero=True, at_most=1)

    def replace(self, **changes: Any) -> Settings:
        """A copy with the given values, skipping None (an unset CLI flag)."""
        given = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **{k: _coerce(k, v) for k, v in given.items()})

    @property
    def is_embedded(self) -> bool:
        return is_embedded_uri(self.milvus_uri)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser()

    @property
    def uploads_path(self) -> Path:
        """Uploaded files, one folder per corpus."""
        return self.data_path / "uploads"

    @property
    def page_cache_path(self) -> Path:
        """Rendered PDF pages of the page view (PNG), made again whenever missing."""
        return self.data_path / "cache" / "pages"

    @property
    def users_path(self) -> Path:
        return Path(self.users_file).expanduser() if self.users_file else self.data_path / "users.json"

    @property
    def tokens_path(self) -> Path:
        return Path(self.tokens_file).expanduser() if self.tokens_file else self.data_path / "tokens.json"


@dataclass(frozen=True)
class Setting:
    """One row of the settings table: what README and --help document."""

    name: str
    default: Any
    help: str
    choices: tuple[str, ...]

    @property
    def variable(self) -> str:
        return ENV_PREFIX + self.name.upper()


DEFAULTS = Settings()  # for parts used without settings (tests, scripts): the same defaults, declared above
SETTINGS: tuple[Setting, ...] = tuple(
    Setting(f.name, f.default, f.metadata["help"], f.metadata["choices"]) for f in dataclasses.fields(Settings))
_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}
CHOICES = {s.name: s.choices for s in SETTINGS if s.choices}


def is_embedded_uri(uri: str) -> bool:
    """True when the URI names a local Milvus Lite file rather than a server."""
    return not uri.startswith(("http://", "https://", "tcp://", "unix:"))


def _coerce(name: str, value: Any) -> Any:
    spec = _FIELDS[name]
    default: Any = spec.default
    variable = ENV_PREFIX + name.upper()
    if isinstance(value, str) and not isinstance(default, str):
        try:
            value = type(default)(value)
        except ValueError:
            raise SettingsError(f"{variable}={value!r} is not a valid {type(default).__name__}") from None
    choices, zero, at_most = spec.metadata["choices"], spec.metadata["zero"], spec.metadata["at_most"]
    if choices and value not in choices:
        raise SettingsError(f"{variable} must be one of {', '.join(choices)}, got {value!r}")
    if isinstance(default, (int, float)):
        if value < 0 or (value == 0 and not zero):
            raise SettingsError(f"{variable} must be {'at least 0' if zero else 'positive'}, got {value}")
        if at_most is not None and value > at_most:
            raise SettingsError(f"{variable} must be from 0 to {at_most:g}, got {value}")
    return value


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Settings from `QA_*` variables in `environ`, defaults for the rest."""
    return Settings(**{s.name: _coerce(s.name, environ[s.variable]) for s in SETTINGS if s.variable in environ})


def settings_environment(settings: Settings) -> dict[str, str]:
    """The QA_* variables that reproduce `settings` (for worker processes)."""
    return {s.variable: str(getattr(settings, s.name)) for s in SETTINGS}
