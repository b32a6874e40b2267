"""Answer a question from retrieved passages: an LLM over an OpenAI-compatible API, or extracted sentences.

The parts, usable alone:
- `LLMClient`: streams chat completions (SSE) from `{base_url}/v1/chat/completions`.
- `build_prompt`: one user message with numbered passages [1]..[n], kept within a token budget.
- `extract_citations`: maps [n] markers in an answer to passage ids and drops numbers that name nothing.
- `extractive_answer`: the no-LLM fallback, the sentences that best match the question, with offsets.
- `Answerer`: ties them together as a stream of events (see `Answerer.stream`) or one dict.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from qa_app.errors import QAError
from qa_app.retrieval import RankedPassage

Message = dict[str, str]
Event = tuple[str, Any]

DEFAULT_MODEL = "gemma-3-270m"
DEFAULT_CONTEXT_TOKENS = 2500
DEFAULT_MAX_TOKENS = 384
EXTRACTIVE_MODEL = "extractive"
NO_ANSWER_MESSAGE = ("The documents do not seem to answer this question: "
                     "the best passage found is only loosely related. The closest passages are shown below.")
NO_PASSAGES_MESSAGE = "No passages were found for this question, so there is nothing to answer from."
_BODY_EXCERPT = 300


class LLMError(QAError):
    """The language model server could not be reached, failed, or sent something unreadable."""

    status = 502


class LLMTimeout(LLMError):
    status = 504


# ---------------------------------------------------------------------------------------------- client


def chat_completions_url(base_url: str) -> str:
    """`http://h:p`, `http://h:p/`, `http://h:p/v1` and `http://h:p/v1/` all name the same endpoint."""
    base = base_url.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"LLM URL must start with http:// or https://, got {base_url!r}")
    if base.endswith("/chat/completions"):
        return base
    if not base.endswith("/v1"):
        base += "/v1"
    return base + "/chat/completions"


@dataclass
class StreamInfo:
    """Filled in by `LLMClient.stream_chat` while it runs: what the server said besides the text."""

    model: str | None = None
    finish_reason: str | None = None
    chunks: int = 0
    usage: dict[str, Any] | None = None


class LLMClient:
    """One shared `httpx.AsyncClient` to an OpenAI-compatible chat completions endpoint."""

    def __init__(self, base_url: str, model: str = DEFAULT_MODEL, *, api_key: str | None = None,
                 connect_timeout: float = 5.0, read_timeout: float = 60.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = chat_completions_url(base_url)
        self.model = model
        headers = {"Accept": "text/event-stream"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        # read applies to each chunk of the stream: a server silent for that long is given up on.
        timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._http = httpx.AsyncClient(headers=headers, timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def list_models(self) -> list[str]:
        """The model ids the server offers (GET .../v1/models): a health check; raises `LLMError`."""
        url = self.url[: -len("/chat/completions")] + "/models"
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
        except httpx.TimeoutException:
            raise LLMTimeout(f"LLM server timed out at {url}") from None
        except httpx.HTTPError as exc:
            raise LLMError(f"cannot reach the LLM server at {url}: {exc}") from None
        if response.status_code >= 400:
            raise LLMError(f"LLM server answered HTTP {response.status_code}: {response.text[:_BODY_EXCERPT]}")
        try:
            return [str(m["id"]) for m in response.json()["data"]]
        except (ValueError, KeyError, TypeError):
            raise LLMError(f"LLM server sent an unreadable model list: {response.text[:80]!r}") from None

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def stream_chat(self, messages: Sequence[Message], *, max_tokens: int = DEFAULT_MAX_TOKENS,
                          temperature: float = 0.0, info: StreamInfo | None = None) -> AsyncIterator[str]:
        """Yield the content deltas of one streamed completion; raise `LLMError` on any failure.

        Close the generator (or cancel the task consuming it) to close the upstream response; wrap it
        in `contextlib.aclosing` when you may stop early, since `break` alone does not close it.
        """
        info = info if info is not None else StreamInfo()
        payload = {"model": self.model, "messages": list(messages), "max_tokens": max_tokens,
                   "temperature": temperature, "stream": True}
        done = False
        try:
            async with self._http.stream("POST", self.url, json=payload) as response:
                if response.status_code >= 400:
                    raise LLMError(f"LLM server answered HTTP {response.status_code}: "
                                   f"{await _body_excerpt(response)}")
                async for data in _sse_data(response):
                    if data.strip() == "[DONE]":
                        done = True
                        break
                    delta = _parse_chunk(data, info)
                    if delta:
                        info.chunks += 1
                        yield delta
        except httpx.TimeoutException as exc:
            raise LLMTimeout(f"LLM server timed out ({type(exc).__name__}) at {self.url}") from None
        except httpx.ConnectError as exc:
            raise LLMError(f"cannot reach the LLM server at {self.url}: {exc}") from None
        except httpx.HTTPError as exc:
            raise LLMError(f"LLM request failed ({type(exc).__name__}): {exc}") from None
        if done and info.finish_reason is None:
            # llama-cpp-python's server, by default (--interrupt_requests True), ends a stream early
            # with a bare [DONE] when another request is waiting.
            info.finish_reason = "interrupted"
        if not done and info.finish_reason is None:
            raise LLMError("LLM stream ended before completion (no [DONE] and no finish_reason); "
                           "the prompt may exceed the model's context window")


async def _body_excerpt(response: httpx.Response) -> str:
    raw = b""
    async for part in response.aiter_bytes():
        raw += part
        if len(raw) > 4 * _BODY_EXCERPT:
            break
    text = raw.decode("utf-8", "replace")
    try:
        error = json.loads(text).get("error")
        if isinstance(error, dict) and error.get("message"):
            text = str(error["message"])
        elif isinstance(error, str):
            text = error
    except (ValueError, AttributeError):
        pass
    text = " ".join(text.split())
    return (text[:_BODY_EXCERPT] + "…") if len(text) > _BODY_EXCERPT else (text or "(empty body)")


async def _sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The data of each server-sent event (multi-line data joined by newlines); comments skipped."""
    lines: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if lines:
                yield "\n".join(lines)
                lines = []
            continue
        if line.startswith(":"):
            continue  # comment / keep-alive ping
        field, _, value = line.partition(":")
        if field == "data":
            lines.append(value[1:] if value.startswith(" ") else value)
    if lines:
        yield "\n".join(lines)


def _parse_chunk(data: str, info: StreamInfo) -> str:
    try:
        chunk = json.loads(data)
    except ValueError:
        raise LLMError(f"LLM stream is malformed: not JSON: {data[:80]!r}") from None
    if not isinstance(chunk, dict):
        raise LLMError(f"LLM stream is malformed: expected an object, got {data[:80]!r}")
    if "error" in chunk:
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else error
        raise LLMError(f"LLM server reported an error: {str(message)[:_BODY_EXCERPT]}")
    if isinstance(chunk.get("model"), str):
        info.model = chunk["model"]
    if isinstance(chunk.get("usage"), dict):
        info.usage = chunk["usage"]
    choices = chunk.get("choices")
    if not isinstance(choices, list) or (not choices and "usage" not in chunk):
        raise LLMError(f"LLM stream is malformed: chunk without choices: {data[:80]!r}")
    if not choices:
        return ""
    choice = choices[0]
    if not isinstance(choice, dict):
        raise LLMError(f"LLM stream is malformed: bad choice: {data[:80]!r}")
    if choice.get("finish_reason"):
        info.finish_reason = str(choice["finish_reason"])
    delta = choice.get("delta") or {}
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else ""


# ---------------------------------------------------------------------------------------------- prompt


def rough_token_count(text: str) -> int:
    """About four characters a token for English; pass a real tokenizer's count where it matters."""
    return len(text) // 4 + 1


# No digits in brackets here: a weak model that echoes the instructions must not cite every passage.
INSTRUCTIONS = (
    "Answer the question using only the numbered passages. After each statement, cite the passage it "
    "comes from by its number in square brackets. If the passages do not contain the answer, say plainly "
    "that the documents do not answer the question. Do not use outside knowledge and do not guess."
)


def _passage_block(number: int, passage: RankedPassage, text: str | None = None) -> str:
    label = " > ".join(p for p in (passage.title, *passage.headings) if p) or passage.source or passage.id
    body = passage.text if text is None else text
    return f"[{number}] {label}\n{body.strip()}\n"


def _render(question: str, blocks: list[str]) -> str:
    # Passages first, question last: small models echo the start of a prompt and answer its end.
    passages = "\n".join(blocks) if blocks else "(no passages)\n"
    return f"Passages:\n\n{passages}\n{INSTRUCTIONS}\n\nQuestion: {question.strip()}"


def strip_echo(text: str) -> str:
    """Drop leading lines a weak model copied from the prompt (the instructions, "Question: ..." lines,
    an "Answer:" label) and whatever follows a later "Question:" line (the model inventing the next
    exchange), so they are neither shown as the answer nor parsed for citations."""
    lines = text.strip().splitlines()
    while lines:
        line = lines[0].strip()
        echoed = len(line) >= 20 and line in INSTRUCTIONS  # a short answer may be a substring by chance
        if not line or echoed or line.startswith(("Question:", "Passages:")):
            lines.pop(0)
        elif line.startswith("Answer:"):
            lines[0] = line[len("Answer:"):]
            break
        else:
            break
    for i, line in enumerate(lines[1:], 1):
        if line.lstrip().startswith("Question:"):
            lines = lines[:i]
            break
    return "\n".join(lines).strip()


def build_prompt(question: str, passages: Sequence[RankedPassage],
                 max_context_tokens: int = DEFAULT_CONTEXT_TOKENS,
                 count_tokens: Callable[[str], int] = rough_token_count,
                 ) -> tuple[list[Message], list[RankedPassage]]:
    """One user message (gemma's chat format drops system messages) and the passages it shows.

    `passages` come best first; they are numbered [1]..[n] in that order. While the prompt is over
    `max_context_tokens`, the last (lowest-ranked) passage is dropped; a lone passage still too long
    is cut short rather than dropped, so the model always sees the best one.
    """
    used = list(passages)
    blocks = [_passage_block(i, p) for i, p in enumerate(used, 1)]
    while len(used) > 1 and count_tokens(_render(question, blocks)) > max_context_tokens:
        used.pop()
        blocks.pop()
    if used and count_tokens(_render(question, blocks)) > max_context_tokens:
        text = used[0].text
        low, high = 0, len(text)  # longest prefix that fits, by bisection
        while low < high:
            mid = (low + high + 1) // 2
            if count_tokens(_render(question, [_passage_block(1, used[0], text[:mid] + " …")])) \
                    <= max_context_tokens:
                low = mid
            else:
                high = mid - 1
        blocks = [_passage_block(1, used[0], text[:low] + " …")]
    return [{"role": "user", "content": _render(question, blocks)}], used


# ---------------------------------------------------------------------------------------------- citations

_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.DOTALL)
# [2]  [1, 3]  [1-3]  [1–3; 5] not preceded by a word or ")" (so x[0] and f()[1] stay code)
_NUM = r"\d{1,6}(?:\s*[-–]\s*\d{1,6})?"
_CITE = re.compile(rf"(\s*)(?<![\w)])\[\s*({_NUM}(?:\s*[,;]\s*{_NUM})*)\s*\]")
_MAX_RANGE = 50


@dataclass(frozen=True)
class Citation:
    number: int
    passage_id: str
    rank: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _numbers(group: str) -> list[int]:
    numbers: list[int] = []
    for part in re.split(r"\s*[,;]\s*", group.strip()):
        bounds = [int(x) for x in re.split(r"\s*[-–]\s*", part)]
        if len(bounds) == 2:
            a, b = bounds
            numbers.extend(range(a, b + 1) if a <= b and b - a <= _MAX_RANGE else (a, b))
        else:
            numbers.extend(bounds)
    return numbers


def extract_citations(text: str, passages_used: Sequence[RankedPassage],
                      ) -> tuple[str, list[dict[str, Any]], int]:
    """(clean text, citations in order of first mention, count of numbers that named no passage).

    A marker keeps only the numbers of shown passages (`[2, 9]` becomes `[2]` with 3 passages);
    a marker left with none is removed with the space before it. Code spans are left alone.
    """
    by_number = {i: p for i, p in enumerate(passages_used, 1)}
    cited: dict[int, Citation] = {}
    invalid = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal invalid
        valid: list[int] = []
        for n in _numbers(match.group(2)):
            if n in by_number:
                if n not in valid:
                    valid.append(n)
                if n not in cited:
                    cited[n] = Citation(n, by_number[n].id, by_number[n].rank)
            else:
                invalid += 1
        if not valid:
            return ""
        return match.group(1) + "[" + ", ".join(map(str, valid)) + "]"

    parts: list[str] = []
    last = 0
    for code in _CODE.finditer(text):
        parts.append(_CITE.sub(replace, text[last:code.start()]))
        parts.append(code.group(0))
        last = code.end()
    parts.append(_CITE.sub(replace, text[last:]))
    clean = "".join(parts)
    clean = re.sub(r"[ \t]+([.,;:!?])", r"\1", clean) if invalid else clean
    return clean.strip(), [c.as_dict() for c in cited.values()], invalid


# ---------------------------------------------------------------------------------------------- extractive

_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset("""
a about above after again against all am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her
here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not
now of off on once only or other our ours ourselves out over own same she should so some such than that the
their theirs them themselves then there these they this those through to too under until up very was we
were what when where which while who whom why will with would you your yours yourself yourselves
""".split())
# A sentence ends at . ! ? (optionally followed by a closing quote/bracket) before whitespace, or at a
# blank line. Abbreviations like "e.g. foo" may split; that only makes a shorter sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n")


def _terms(text: str) -> list[str]:
    terms = []
    for word in _WORD.findall(text.lower()):
        if word in _STOP or (len(word) < 2 and not word.isdigit()):
            continue
        for suffix in ("ing", "es", "ed", "s"):  # crude stemming: enough to match plural/tense
            if len(word) > len(suffix) + 3 and word.endswith(suffix):
                word = word[: -len(suffix)]
                break
        terms.append(word)
    return terms


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, whitespace trimmed, so text[start:end] is the sentence."""
    spans = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    trimmed = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            trimmed.append((s, e))
    return trimmed


@dataclass(frozen=True)
class Sentence:
    """A sentence chosen for the extractive answer: `passage.text[start:end] == text`."""

    number: int  # the passage's position among those given, 1-based, as in a generated answer's [n]
    passage_id: str
    rank: int
    start: int
    end: int
    text: str
    score: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def extractive_answer(question: str, passages: Sequence[RankedPassage], *, max_sentences: int = 3,
                      max_passages: int = 3, max_chars: int = 800) -> list[Sentence]:
    """The 1-3 sentences of the top passages that best match the question (BM25 over sentences).

    Sentences from higher-ranked passages get a mild boost. When no sentence shares a term with the
    question, the first sentence of the top passage is returned, so there is always something to show
    when there are passages.
    """
    candidates: list[tuple[int, RankedPassage, int, int, list[str]]] = []
    for number, passage in enumerate(passages[:max_passages], 1):
        for start, end in split_sentences(passage.text):
            candidates.append((number, passage, start, end, _terms(passage.text[start:end])))
    if not candidates:
        return []
    query = set(_terms(question))
    n = len(candidates)
    df = Counter(t for *_, terms in candidates for t in set(terms))
    avg_len = sum(len(c[4]) for c in candidates) / n or 1.0
    k1, b = 1.2, 0.75
    scored = []
    for index, (number, passage, start, end, terms) in enumerate(candidates):
        tf = Counter(terms)
        score = 0.0
        for term in query & tf.keys():
            idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
            f = tf[term]
            score += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len(terms) / avg_len))
        if len(terms) < 3:
            score *= 0.5  # fragments and headings make poor answers
        score /= 1 + 0.15 * (number - 1)
        scored.append((score, -index, number, passage, start, end))
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
    best = scored[0][0]
    chosen: list[Sentence] = []
    total = 0
    for score, _, number, passage, start, end in scored:
        if len(chosen) >= max_sentences or (chosen and score < 0.4 * best) or score <= 0 < best:
            break
        length = end - start
        if chosen and total + length > max_chars:
            continue
        chosen.append(Sentence(number, passage.id, passage.rank, start, end, passage.text[start:end],
                               round(score, 4)))
        total += length
        if best <= 0:
            break  # no overlap at all: just the lead sentence of the top passage
    return chosen


def format_extract(sentences: Sequence[Sentence]) -> str:
    return " ".join(f"{s.text} [{s.number}]" for s in sentences)


# ---------------------------------------------------------------------------------------------- answerer


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


class Answerer:
    """Answers from passages: generated by `client` when there is one and it works, else extracted.

    `floor`: when the top passage's `floor_score` (default: its `score`) is below it, the answer is
    kind "no_answer". None (the default) disables the check, as does a score of None.
    """

    def __init__(self, client: LLMClient | None = None, *, max_tokens: int = DEFAULT_MAX_TOKENS,
                 temperature: float = 0.0, max_context_tokens: int = DEFAULT_CONTEXT_TOKENS,
                 count_tokens: Callable[[str], int] = rough_token_count, floor: float | None = None,
                 floor_score: Callable[[RankedPassage], float | None] = lambda p: p.score) -> None:
        self.client = client
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.max_context_tokens = max_context_tokens
        self.count_tokens = count_tokens
        self.floor = floor
        self.floor_score = floor_score

    def below_floor(self, passages: Sequence[RankedPassage]) -> bool:
        """No passages, or the best `floor_score` among them is under the floor (unknown scores pass)."""
        if not passages:
            return True
        if self.floor is None:
            return False
        scores = [s for s in (self.floor_score(p) for p in passages) if s is not None]
        return bool(scores) and max(scores) < self.floor

    def extract(self, question: str, passages: Sequence[RankedPassage]) -> dict[str, Any]:
        """The answer without any LLM, at once: no_answer below the floor, else the best sentences."""
        if self.below_floor(passages):
            message = NO_ANSWER_MESSAGE if passages else NO_PASSAGES_MESSAGE
            return {"kind": "no_answer", "text": message, "sentences": [], "citations": []}
        sentences = extractive_answer(question, passages)
        citations: list[dict[str, Any]] = []
        for s in sentences:
            if all(c["number"] != s.number for c in citations):
                citations.append(Citation(s.number, s.passage_id, s.rank).as_dict())
        return {"kind": "extracted", "text": format_extract(sentences), "model": EXTRACTIVE_MODEL,
                "sentences": [s.as_dict() for s in sentences], "citations": citations}

    async def stream(self, question: str, passages: Sequence[RankedPassage]) -> AsyncIterator[Event]:
        """Events, in this order; never raises (except cancellation):

        - ("token", str)*: pieces of the generated text as they arrive (may hold invalid [n]);
        - ("no_answer", message): below the floor or no passages; nothing is generated;
        - ("error", message): the LLM failed (after zero or more tokens); the extract follows;
        - ("extracted", {"text", "sentences": [Sentence.as_dict()]}): the fallback answer;
        - ("citations", [{"number", "passage_id", "rank"}]): always, possibly empty;
        - ("done", {"kind", "text", "invalid_citations", "model", "timings_ms", "tokens", "error"?}):
          always last; "text" is the final answer to show (cleaned of invalid citations), which
          replaces the streamed tokens.

        Stop early with `contextlib.aclosing(...)` or by cancelling the task: the upstream
        request is closed either way.
        """
        started = time.perf_counter()
        timings: dict[str, float] = {}
        if self.below_floor(passages):
            message = NO_ANSWER_MESSAGE if passages else NO_PASSAGES_MESSAGE
            yield "no_answer", message
            yield "citations", []
            timings["total"] = _ms(started)
            yield "done", {"kind": "no_answer", "text": message, "invalid_citations": 0,
                           "model": None, "timings_ms": timings, "tokens": 0}
            return
        error: str | None = None
        if self.client is not None:
            info = StreamInfo()
            pieces: list[str] = []
            try:
                messages, used = build_prompt(question, passages, self.max_context_tokens, self.count_tokens)
                timings["prompt"] = _ms(started)
                generating = time.perf_counter()
                async with aclosing(self.client.stream_chat(messages, max_tokens=self.max_tokens,
                                                            temperature=self.temperature,
                                                            info=info)) as deltas:
                    async for delta in deltas:
                        if not pieces:
                            timings["first_token"] = _ms(generating)
                        pieces.append(delta)
                        yield "token", delta
                timings["generate"] = _ms(generating)
                text, citations, invalid = extract_citations(strip_echo("".join(pieces)), used)
                if not text:
                    raise LLMError("LLM returned no answer" if not pieces else
                                   "LLM only repeated the prompt instead of answering")
            except Exception as exc:  # noqa: BLE001 - any failure falls back to the extract
                error = exc.message if isinstance(exc, QAError) else f"{type(exc).__name__}: {exc}"
            else:
                yield "citations", citations
                timings["total"] = _ms(started)
                generate_s = timings["generate"] / 1000
                yield "done", {"kind": "generated", "text": text, "invalid_citations": invalid,
                               "model": info.model or self.client.model, "timings_ms": timings,
                               "tokens": info.chunks, "finish_reason": info.finish_reason,
                               "tokens_per_s": round(info.chunks / generate_s, 2) if generate_s else None}
                return
            yield "error", error
        extracting = time.perf_counter()
        extract = self.extract(question, passages)
        timings["extract"] = _ms(extracting)
        yield "extracted", {"text": extract["text"], "sentences": extract["sentences"]}
        yield "citations", extract["citations"]
        timings["total"] = _ms(started)
        done: dict[str, Any] = {"kind": "extracted", "text": extract["text"], "invalid_citations": 0,
                                "model": EXTRACTIVE_MODEL, "timings_ms": timings, "tokens": 0,
                                "sentences": extract["sentences"]}
        if error is not None:
            done["error"] = error
        yield "done", done

    async def complete(self, question: str, passages: Sequence[RankedPassage]) -> dict[str, Any]:
        """The whole answer as one dict: {text, citations, invalid_citations, model, timings_ms, kind,
        tokens, error?, sentences? (extracted)}."""
        citations: list[dict[str, Any]] = []
        result: dict[str, Any] = {}
        async with aclosing(self.stream(question, passages)) as events:
            async for kind, value in events:
                if kind == "citations":
                    citations = value
                elif kind == "done":
                    result = dict(value)
        result["citations"] = citations
        return result
