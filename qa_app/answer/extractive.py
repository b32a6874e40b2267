"""The answer without a language model: the sentence of the top passages that best states it.

Each passage is cut into units: the sentences of its prose, and whole code blocks, table rows and
headings, each classified (`prose`, `code`, `markup`, `heading`, `question`, `lead_in`, `fragment`).
A unit's score adds its meaning (cosine to the question, when vectors are given), its words (BM25
over the units, scaled to the best unit) and its passage's rank, and subtracts a penalty for each
kind that is not prose stating something (code is not penalised when the question asks for code).
A unit of a lower passage is chosen only when it beats every higher one by more than the rank step,
so the answer never comes from a lower passage when a higher one says it as well.

The scoring is pure (vectors in, units out), so tests can give fixed vectors; the answerer embeds
the units of the shown passages with the dense model and passes them in.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from qa_app.models import Passage

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
_BLOCK_BREAK = re.compile(r"\n[ \t]*\n")
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_CODE_START = re.compile(r"^\s*(?:>>>|\.\.\.\s|> |\$ |% |#|//|@\w)|\)\s+#\s")
_CODE_KEYWORD = re.compile(r"^\s*(?:def|class|import|from|return|raise|yield|async|await|with|for|while|if|elif|"
                           r"else|try|except|finally|lambda|print|assert|pass|del|global|nonlocal)\b[^.!?]*[:(\]]")
_ASSIGNMENT = re.compile(r"^\s*[\w.]+(?:\[[^\]]*\])*\s*(?:[-+*/|&]?=|:=)\s*[^\s=]")
_CODE_END = re.compile(r"[{};]\s*$|\)\s*:\s*$")
_DEFINITION = re.compile(r"^\s*(?:class|def|async\s+def)\s+[\w.]+\s*[(:]")
_CALL = re.compile(r"^\s*(?:[\w.]+\s*(?:=|<-)\s*)?[\w.]+\(.*\)\s*$|^\s*(?:import|from)\s+[\w.]+(?:\s+import\s+.+)?\s*$")
# A one-line signature in reference documentation (`shutil.copytree(src, dst, ...)`, `@functools.cache`,
# `class C(x)`): what the first sentence after it describes.
_SIGNATURE = re.compile(r"^\s*(?:@|class\s+|async\s+def\s+|def\s+)?[\w.]+(?:\(.*\))?(?:\s*->\s*.+)?\s*$")
# A name a reader would type: a dotted name, a call, snake_case, CamelCase inside a word, `code`.
_IDENTIFIER = re.compile(r"`[^`\n]+`|\b\w+(?:\.\w+)+\b|\b\w+\(|\b[a-z]\w*_\w+\b|\b[A-Z][a-z]+[A-Z]\w*\b|--?[a-z][\w-]+")
_SYMBOLS = frozenset("()[]{}=<>_*#@;\"'`/\\|~^$%&+")
_TABLE_RULE = re.compile(r"^[\s=+\-|:]{3,}$")
_RST_RESIDUE = re.compile(r"^\s*\.\.\s+[\w-]+::|^\s*:\w[\w-]*:|\|\s*\w.*\|\s*$")
# Asking for code: the only questions where a code block may be the answer.
_WANTS_CODE = re.compile(r"\b(?:code|example|examples|snippet|syntax|sample|one-liner)\b", re.IGNORECASE)
# Questions whose answer is a time or a quantity, and the units that carry one.
_ASKS_WHEN = re.compile(r"^\W*when\b|\bwhen (?:do|does|did|is|are|was|were|will|should|can)\b|\bwhat (?:year|time)\b",
                        re.IGNORECASE)
_ASKS_AMOUNT = re.compile(r"\bhow (?:many|much|long|old|big|large|far|often|fast)\b|\bwhat (?:percentage|size)\b",
                          re.IGNORECASE)
_TIME = re.compile(r"\b(?:1[5-9]\d\d|20\d\d|january|february|march|april|may|june|july|august|september|october|"
                   r"november|december|spring|summer|autumn|fall|winter|when|whenever|after|before|until|during|"
                   r"once|seconds?|minutes?|hours?|days?|weeks?|months?|years?|morning|evening|night)\b", re.IGNORECASE)
_AMOUNT = re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|twelve|hundred|thousand|million|"
                     r"billion|dozen|half|double|twice)\b", re.IGNORECASE)
EMBED_CHARS = 400  # what of a long unit is embedded: its start says what it is about


@dataclass(frozen=True)
class Weights:
    """How a unit's score is made (see the module docstring); tuned in docs/research/answers."""

    dense: float = 1.0  # x cosine(question, unit)
    passage: float = 0.0  # x cosine(question, the unit's passage): measured no better, so off
    # x BM25 over the units, scaled so the best unit has 1. With the dense score it only did harm on
    # both question sets (a sentence that repeats the question's words restates it more often than it
    # answers it): 0. The question's words still count through the passages' hybrid ranking, and
    # without vectors this is the whole score.
    words: float = 0.0
    rank_step: float = 0.03  # subtracted per passage below the first
    code: float = 0.25
    markup: float = 0.3
    heading: float = 0.25
    question: float = 0.3  # a question restates the question, it does not answer it
    lead_in: float = 0.15  # "For example:", "as follows::": introduces the answer, says nothing itself
    fragment: float = 0.2  # fewer than 4 words
    restates: float = 0.15  # every word of the unit is in the question: it says nothing new
    answer_type: float = 0.1  # added when a "when" / "how many" question meets a time / a number
    identifier: float = 0.1  # added when the unit names something to type (a function, an option) the question does not
    long_words: int = 60  # beyond this many words a unit is hard to read as an answer ...
    long: float = 0.1  # ... and loses this much
    sentences: int = 3  # at most this many units in an answer: the best, then ...
    more_margin: float = 0.25  # ... prose units within this much of the best ...
    more_anywhere: bool = False  # ... from any passage shown (else only from the best unit's passage)


WEIGHTS = Weights()
PENALISED = ("code", "markup", "heading", "question", "lead_in", "fragment")


@dataclass(frozen=True)
class Unit:
    """A candidate: one sentence (or code block, table row, heading) of passage `number` ([n])."""

    number: int
    passage: Passage
    start: int
    end: int
    kind: str
    index: int  # position among the passage's units

    @property
    def text(self) -> str:
        return self.passage.text[self.start:self.end]

    @property
    def embed_text(self) -> str:
        return self.text[:EMBED_CHARS]


@dataclass(frozen=True)
class Sentence:
    """A unit quoted in an extracted answer: passage `number` ([n]), text[start:end] of it."""

    number: int  # the passage's number in the list shown, as [n]
    passage_id: str
    rank: int
    start: int
    end: int
    text: str
    score: float
    kind: str = "prose"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def stem(word: str) -> str:
    for suffix in ("ing", "es", "ed", "s"):  # crude stemming: enough to match plural/tense
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def terms(text: str) -> list[str]:
    """Content words, lower-cased and crudely stemmed: what keyword scores and overlaps count."""
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP and (len(w) >= 2 or w.isdigit())]


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, whitespace trimmed, so text[start:end] is the sentence."""
    spans = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [span for span in (_trim(text, s, e) for s, e in spans) if span]


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def code_line(line: str) -> bool:
    """Whether one line reads as code (a prompt, a comment, a statement, an assignment, dense symbols)."""
    stripped = line.strip()
    if not stripped:
        return False
    if _CODE_START.search(stripped) or _CODE_KEYWORD.match(stripped) or _ASSIGNMENT.match(stripped) \
            or _CODE_END.search(stripped) or _CALL.match(stripped) or _DEFINITION.match(stripped):
        return True
    visible = [c for c in stripped if not c.isspace()]
    return len(visible) >= 6 and sum(c in _SYMBOLS for c in visible) / len(visible) > 0.2


def _block_kind(lines: list[str]) -> str | None:
    """`code` or `markup` for a block that is one as a whole, else None (prose, to be split)."""
    filled = [ln for ln in lines if ln.strip()]
    if not filled:
        return None
    if sum(code_line(ln) for ln in filled) * 2 > len(filled) or filled[0].lstrip().startswith(">>>"):
        return "code"
    if len(filled) > 1 and sum(bool(_TABLE_RULE.match(ln)) or ln.count("|") >= 2 for ln in filled) * 2 >= len(filled):
        return "markup"
    return None


def sentence_kind(text: str, *, alone: bool, headings: Sequence[str] = ()) -> str:
    """What a sentence of prose is: `prose`, or why it makes a poor answer."""
    stripped = text.strip()
    words = stripped.split()
    if _RST_RESIDUE.search(stripped) or _TABLE_RULE.match(stripped):
        return "markup"
    if "\n" not in stripped and code_line(stripped) and not stripped.endswith((".", "!")):
        return "code"
    if stripped.endswith("?"):
        return "question"
    if stripped.endswith(":"):
        return "lead_in"
    if stripped in headings or (alone and len(words) <= 12 and not stripped[:1].islower()
                                and not stripped.endswith((".", "!", ";", ")", '"'))):
        return "heading"
    if len(words) < 4:
        return "fragment"
    return "prose"


def passage_units(number: int, passage: Passage) -> list[Unit]:
    """The units of one passage, in text order: blocks split at blank lines, code blocks and tables
    kept whole, prose cut into sentences (a list item starts a new one)."""
    text = passage.text
    headings = tuple(h for h in (passage.title, *passage.headings) if h)
    spans: list[tuple[int, int, str]] = []
    block_start = 0
    for block_end, next_start in [*((m.start(), m.end()) for m in _BLOCK_BREAK.finditer(text)),
                                  (len(text), len(text))]:
        trimmed = _trim(text, block_start, block_end)
        block_start = next_start
        if trimmed is None:
            continue
        start, end = trimmed
        block = text[start:end]
        kind = _block_kind(block.split("\n"))
        if kind is not None:
            spans.append((start, end, kind))
            continue
        items: list[tuple[int, int]] = []  # list items, each on its own line(s)
        offset = start
        for line in block.split("\n"):
            line_start = offset
            offset += len(line) + 1
            if not items or _BULLET.match(line):
                items.append((line_start, line_start + len(line)))
            else:
                items[-1] = (items[-1][0], line_start + len(line))
        alone = len(items) == 1
        for item_start, item_end in items:
            sentences = split_sentences(text[item_start:item_end])
            for s, e in sentences:
                piece = text[item_start + s:item_start + e]
                spans.append((item_start + s, item_start + e,
                              sentence_kind(piece, alone=alone and len(sentences) == 1, headings=headings)))
    spans = _whole_sentences(text, spans)
    return [Unit(number, passage, s, e, kind, i) for i, (s, e, kind) in enumerate(spans)]


def _whole_sentences(text: str, spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Units joined where the layout cut a sentence: a sentence that goes on in lower case after a
    code line or an unfinished line (PDF manuals put code inside sentences: "The function sink,
    > sink("x") will divert ..."), and a one-line signature with the first sentence that describes it."""
    out: list[tuple[int, int, str]] = []
    for start, end, kind in spans:
        piece = text[start:end]
        if out and kind in ("prose", "fragment", "lead_in") and piece[:1].islower():
            joined = [out.pop()]
            while out and len(joined) < 3 and (joined[0][2] == "code" or not _finished(text, joined[0])) \
                    and not _finished(text, out[-1]) and end - out[-1][0] <= 600:
                joined.insert(0, out.pop())
            first = joined[0]
            if first[2] != "code" and not _finished(text, first):  # a sentence it goes on with
                out.append((first[0], end, "prose"))
                continue
            out.extend(joined)
        if out and kind == "prose" and out[-1][2] == "code" and "\n" not in text[out[-1][0]:out[-1][1]] \
                and _SIGNATURE.match(text[out[-1][0]:out[-1][1]]):
            out[-1] = (out[-1][0], end, "prose")  # the signature and the sentence after it
            continue
        out.append((start, end, kind))
    return out


def _finished(text: str, span: tuple[int, int, str]) -> bool:
    return text[span[0]:span[1]].rstrip().endswith((".", "!", "?", ":"))


def candidate_units(passages: Sequence[Passage], max_passages: int = 3) -> list[Unit]:
    """Every unit of the top `max_passages` passages, passage by passage."""
    return [u for number, p in enumerate(passages[:max_passages], 1) for u in passage_units(number, p)]


def wants_code(question: str) -> bool:
    return bool(_WANTS_CODE.search(question))


def answer_type_of(question: str) -> re.Pattern[str] | None:
    """What a unit must hold to be of the answer's type: a time for "when", a number for "how many"."""
    if _ASKS_WHEN.search(question):
        return _TIME
    if _ASKS_AMOUNT.search(question):
        return _AMOUNT
    return None


def keyword_scores(question: str, units: Sequence[Unit]) -> list[float]:
    """BM25 of each unit against the question, the units being the collection; scaled to 0..1."""
    if not units:
        return []
    query = set(terms(question))
    bags = [terms(u.text) for u in units]
    n = len(bags)
    df = Counter(t for bag in bags for t in set(bag))
    avg_len = sum(len(b) for b in bags) / n or 1.0
    k1, b = 1.2, 0.75
    scores = []
    for bag in bags:
        tf = Counter(bag)
        score = 0.0
        for term in query & tf.keys():
            idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
            f = tf[term]
            score += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * len(bag) / avg_len))
        scores.append(score)
    best = max(scores)
    return [s / best if best > 0 else 0.0 for s in scores]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of two vectors (the model's are unit length already; others are normalised here)."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b)) / norm if norm else 0.0


def score_units(question: str, units: Sequence[Unit], vectors: Mapping[str, np.ndarray] | None = None,
                weights: Weights = WEIGHTS) -> list[float]:
    """Each unit's score (see the module docstring). `vectors` maps the question and unit `embed_text`s
    to their vectors; without it (or a unit's vector) the dense part is left out."""
    words = keyword_scores(question, units)
    asked = set(terms(question))
    code_ok = wants_code(question)
    wanted = answer_type_of(question)
    q_vector = vectors.get(question) if vectors is not None else None
    dense: list[float | None] = []
    for unit in units:
        vector = vectors.get(unit.embed_text) if vectors is not None and q_vector is not None else None
        dense.append(cosine(q_vector, vector) if vector is not None and q_vector is not None else None)
    # The passage's own cosine, from the search; for one the dense search did not return, its best unit's.
    relevance: dict[str, float] = {}
    for unit, cos in zip(units, dense, strict=True):
        known = unit.passage.why.dense_score
        if known is not None:
            relevance[unit.passage.id] = known
        elif cos is not None:
            relevance[unit.passage.id] = max(cos, relevance.get(unit.passage.id, -1.0))
    scores = []
    for unit, word_score, cos in zip(units, words, dense, strict=True):
        score = (weights.words if q_vector is not None else 1.0) * word_score - weights.rank_step * (unit.number - 1)
        if cos is not None:
            score += weights.dense * cos + weights.passage * relevance.get(unit.passage.id, 0.0)
        if unit.kind in PENALISED and not (unit.kind == "code" and code_ok):
            score -= getattr(weights, unit.kind)
        unit_terms = terms(unit.text)
        if unit_terms and set(unit_terms) <= asked:
            score -= weights.restates
        if len(unit.text.split()) > weights.long_words:
            score -= weights.long
        if wanted is not None and wanted.search(_without(unit.text, question)):
            score += weights.answer_type
        if weights.identifier and unit.kind != "code" and _names_new(unit.text, question):
            score += weights.identifier
        scores.append(score)
    return scores


def _names_new(text: str, question: str) -> bool:
    """Whether `text` names an identifier that the question does not."""
    asked = question.lower()
    return any(m.group(0).strip("`(").lower() not in asked for m in _IDENTIFIER.finditer(text))


def _without(text: str, question: str) -> str:
    """`text` without the words of the question (a "when" sentence must bring its own time)."""
    asked = {w.lower() for w in _WORD.findall(question)}
    return " ".join(w for w in _WORD.findall(text) if w.lower() not in asked)


def choose(units: Sequence[Unit], scores: Sequence[float], *, max_sentences: int = 2, max_chars: int = 600,
           margin: float = WEIGHTS.more_margin, anywhere: bool = False) -> list[Sentence]:
    """The best unit, then up to `max_sentences - 1` more prose units within `margin` of it from its
    own passage (or any, with `anywhere`), in text order, while they fit in `max_chars`."""
    if not units:
        return []
    order = sorted(range(len(units)), key=lambda i: (-scores[i], units[i].number, units[i].index))
    best = order[0]
    chosen = [best]
    total = units[best].end - units[best].start
    for i in order[1:]:
        if len(chosen) >= max_sentences or scores[i] < scores[best] - margin:
            break
        unit = units[i]
        if (unit.number != units[best].number and not anywhere) or unit.kind != "prose":
            continue
        length = unit.end - unit.start
        if total + length > max_chars:
            continue
        chosen.append(i)
        total += length
    chosen.sort(key=lambda i: (units[i].number, units[i].index))
    return [_sentence(units[i], scores[i]) for i in chosen]


def _sentence(unit: Unit, score: float) -> Sentence:
    return Sentence(unit.number, unit.passage.id, unit.passage.rank, unit.start, unit.end, unit.text,
                    round(score, 4), unit.kind)


def extractive_answer(question: str, passages: Sequence[Passage], *, vectors: Mapping[str, np.ndarray] | None = None,
                      max_sentences: int | None = None, max_passages: int = 3, max_chars: int = 600,
                      weights: Weights = WEIGHTS) -> list[Sentence]:
    """The 1-`max_sentences` (default `weights.sentences`) units of the top passages that best state
    the answer.

    Without vectors, and when no unit shares a word with the question, the first sentence of the top
    passage is returned, so there is always something to show when there are passages.
    """
    units = candidate_units(passages, max_passages)
    if not units:
        return []
    scores = score_units(question, units, vectors, weights)
    max_sentences = weights.sentences if max_sentences is None else max_sentences
    if vectors is None:
        if not any(keyword_scores(question, units)):
            lead = next((u for u in units if u.number == 1 and u.kind == "prose"), units[0])
            return [_sentence(lead, scores[units.index(lead)])]
        # Keyword scores alone are coarse: keep what scores at least 40% of the best, as BM25 did.
        return choose(units, scores, max_sentences=max_sentences, max_chars=max_chars,
                      margin=0.6 * max(scores))
    return choose(units, scores, max_sentences=max_sentences, max_chars=max_chars, margin=weights.more_margin,
                  anywhere=weights.more_anywhere)


def format_extract(sentences: Sequence[Sentence]) -> str:
    """The quoted units, each run from one passage followed by its [n]; blank lines (a signature
    above its description, code inside a sentence) shown as one line break."""
    parts: list[str] = []
    for i, s in enumerate(sentences):
        parts.append(re.sub(r"\n[ \t]*\n\s*", "\n", s.text))
        if i + 1 == len(sentences) or sentences[i + 1].number != s.number:
            parts[-1] += f" [{s.number}]"
    return " ".join(parts)
