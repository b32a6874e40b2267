"""One settings object, read from `QA_*` environment variables; CLI flags override it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENV_PREFIX = "QA_"


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("milvus_uri", "qa_app.db", "Milvus URI: a local .db file (Milvus Lite) or http://host:19530"),
    Setting("milvus_token", "", "Token for a Milvus server (user:password or an API key)"),
    Setting("collection", "passages", "Collection name"),
    Setting("model", "all-MiniLM-L6-v2", "Dense embedding model: a packaged name, a folder, or a hub id"),
    Setting("precision", "auto", "Embedding arithmetic: bf16 or fp32; auto picks bf16 where the CPU multiplies bf16 in hardware"),
    Setting("chunk_tokens", 200, "Most word pieces of body text in one passage"),
    Setting("chunk_overlap", 32, "Word pieces repeated from the end of one passage at the start of the next"),
    Setting("top_k", 5, "Passages returned by default"),
    Setting("max_top_k", 50, "Largest top_k a request may ask for"),
    Setting("candidates", 50, "Candidates fetched from each retriever before fusion"),
    Setting("fusion", "weighted", "How hybrid mode fuses the two lists: weighted (scores, in the app) or rrf (Milvus RRFRanker)"),
    Setting("dense_weight", 0.6, "Weighted fusion: the dense list's share, 0 to 1 (the keyword list gets the rest)"),
    Setting("rrf_k", 60, "The k of reciprocal-rank fusion: larger flattens the rank curve"),
    Setting("timeout", 10.0, "Seconds allowed for each Milvus call"),
    Setting("encode_batch", 32, "Passages per model call while loading"),
    Setting("insert_batch", 256, "Passages per Milvus insert"),
    Setting("watch_interval", 5.0, "Seconds between looks at the files `serve --watch` keeps loaded"),
    Setting("host", "127.0.0.1", "Address the web server binds to"),
    Setting("port", 8000, "Port the web server listens on"),
    Setting("max_question_chars", 1000, "Longest question accepted"),
    Setting("max_filter_chars", 500, "Longest filter value accepted"),
    Setting("api_token", "", "When set, JSON endpoints need `Authorization: Bearer <token>`"),
    Setting("llm_url", "", "OpenAI-compatible server, e.g. http://127.0.0.1:8011/v1; empty: extracted answers only"),
    Setting("llm_model", "gemma-3-270m", "Model name sent to the LLM server"),
    Setting("llm_api_key", "", "Bearer token for the LLM server"),
    Setting("llm_connect_timeout", 5.0, "Seconds to connect to the LLM server"),
    Setting("llm_read_timeout", 60.0, "Seconds the LLM may stay silent while streaming"),
    Setting("llm_max_tokens", 384, "Longest generated answer, in tokens"),
    Setting("llm_temperature", 0.0, "Sampling temperature; 0 is the most repeatable"),
    Setting("llm_context_tokens", 2500, "Prompt budget: lowest-ranked passages are dropped to fit"),
    Setting("answer_floor", 0.35, "Below this cosine similarity of the best passage, say the documents do not answer"),
)

# Settings where 0 is a meaningful value (everything else numeric must be positive).
ZERO_ALLOWED = {"chunk_overlap", "llm_temperature", "answer_floor", "dense_weight"}
CHOICES = {"fusion": ("weighted", "rrf"), "precision": ("auto", "bf16", "fp32")}

_DEFAULTS = {s.name: s.default for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    milvus_uri: str = _DEFAULTS["milvus_uri"]
    milvus_token: str = _DEFAULTS["milvus_token"]
    collection: str = _DEFAULTS["collection"]
    model: str = _DEFAULTS["model"]
    precision: str = _DEFAULTS["precision"]
    chunk_tokens: int = _DEFAULTS["chunk_tokens"]
    chunk_overlap: int = _DEFAULTS["chunk_overlap"]
    top_k: int = _DEFAULTS["top_k"]
    max_top_k: int = _DEFAULTS["max_top_k"]
    candidates: int = _DEFAULTS["candidates"]
    fusion: str = _DEFAULTS["fusion"]
    dense_weight: float = _DEFAULTS["dense_weight"]
    rrf_k: int = _DEFAULTS["rrf_k"]
    timeout: float = _DEFAULTS["timeout"]
    encode_batch: int = _DEFAULTS["encode_batch"]
    insert_batch: int = _DEFAULTS["insert_batch"]
    watch_interval: float = _DEFAULTS["watch_interval"]
    host: str = _DEFAULTS["host"]
    port: int = _DEFAULTS["port"]
    max_question_chars: int = _DEFAULTS["max_question_chars"]
    max_filter_chars: int = _DEFAULTS["max_filter_chars"]
    api_token: str = _DEFAULTS["api_token"]
    llm_url: str = _DEFAULTS["llm_url"]
    llm_model: str = _DEFAULTS["llm_model"]
    llm_api_key: str = _DEFAULTS["llm_api_key"]
    llm_connect_timeout: float = _DEFAULTS["llm_connect_timeout"]
    llm_read_timeout: float = _DEFAULTS["llm_read_timeout"]
    llm_max_tokens: int = _DEFAULTS["llm_max_tokens"]
    llm_temperature: float = _DEFAULTS["llm_temperature"]
    llm_context_tokens: int = _DEFAULTS["llm_context_tokens"]
    answer_floor: float = _DEFAULTS["answer_floor"]

    def replace(self, **changes: Any) -> Settings:
        """A copy with the given values, skipping None (an unset CLI flag)."""
        given = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **{k: _coerce(k, v) for k, v in given.items()})

    @property
    def is_embedded(self) -> bool:
        return is_embedded_uri(self.milvus_uri)


def is_embedded_uri(uri: str) -> bool:
    """True when the URI names a local Milvus Lite file rather than a server."""
    return not uri.startswith(("http://", "https://", "tcp://", "unix:"))


class SettingsError(ValueError):
    pass


def _coerce(name: str, value: Any) -> Any:
    default = _DEFAULTS[name]
    if isinstance(value, str) and not isinstance(default, str):
        try:
            value = type(default)(value)
        except ValueError:
            raise SettingsError(
                f"{ENV_PREFIX}{name.upper()}={value!r} is not a valid {type(default).__name__}"
            ) from None
    if name in CHOICES and value not in CHOICES[name]:
        raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be one of {', '.join(CHOICES[name])}, got {value!r}")
    if name == "dense_weight" and value > 1:
        raise SettingsError(f"{ENV_PREFIX}DENSE_WEIGHT must be from 0 to 1, got {value}")
    if isinstance(default, (int, float)) and (value < 0 or value == 0 and name not in ZERO_ALLOWED):
        raise SettingsError(f"{ENV_PREFIX}{name.upper()} must be {'at least 0' if name in ZERO_ALLOWED else 'positive'}, "
                            f"got {value}")
    return value


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Settings from `QA_*` variables in `environ`, defaults for the rest."""
    values = {}
    for setting in SETTINGS:
        key = ENV_PREFIX + setting.name.upper()
        if key in environ:
            values[setting.name] = _coerce(setting.name, environ[key])
    return Settings(**values)


def settings_environment(settings: Settings) -> dict[str, str]:
    """The QA_* variables that reproduce `settings` (for worker processes)."""
    return {ENV_PREFIX + s.name.upper(): str(getattr(settings, s.name)) for s in SETTINGS}
