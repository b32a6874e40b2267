"""When there is no answer: why (the reason), and what to try next (suggestions, each the parameters
of the search that tries it, so the page can link to it and a client can run it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qa_app.models import TextFilter
from qa_app.settings import DEFAULTS

# Why there is no answer.
NO_PASSAGES = "no_passages"  # the search found nothing (no filter)
FILTERED_OUT = "filtered_out"  # no passage matched the filter
BELOW_FLOOR = "below_floor"  # the best passage is below the relevance floor
DECLINED = "declined"  # the language model read the passages and said they do not answer
REASONS = (NO_PASSAGES, FILTERED_OUT, BELOW_FLOOR, DECLINED)
MORE_PASSAGES = 10  # "more passages" asks for at least this many (twice as many, up to max_top_k)


@dataclass(frozen=True)
class Asked:
    """How the passages were searched for: what a next step changes."""

    mode: str = "hybrid"
    top_k: int = DEFAULTS.top_k
    filter: TextFilter = field(default_factory=TextFilter)
    max_top_k: int = DEFAULTS.max_top_k

    @property
    def filtered(self) -> bool:
        return bool(self.filter.values() or self.filter.corpora)

    def params(self, question: str, **changes: Any) -> dict[str, str]:
        """The page's query parameters for this search (`/?q=...`), with `changes`; None drops a key."""
        params: dict[str, Any] = {"q": question, "mode": self.mode, "top_k": str(self.top_k),
                                  **self.filter.values()}
        if self.filter.corpora:
            params["corpus"] = ",".join(self.filter.corpora)
        params.update(changes)
        return {k: str(v) for k, v in params.items() if v is not None}


@dataclass(frozen=True)
class Suggestion:
    """A next step: `params` are the query parameters of the search it runs."""

    action: str  # keyword, hybrid, more_passages, without_filter
    label: str
    params: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "label": self.label, "params": dict(self.params)}


def filter_description(text_filter: TextFilter) -> str:
    parts = [f"{key} {value!r}" for key, value in text_filter.values().items()]
    if text_filter.corpora:
        parts.append("corpus " + ", ".join(repr(c) for c in text_filter.corpora))
    return ", ".join(parts)


def explain(reason: str, asked: Asked | None, *, best: float | None = None, floor: float | None = None,
            model: str | None = None, passages: int = 0) -> str:
    """One sentence on why there is no answer, with the figures that decided it."""
    if reason == FILTERED_OUT and asked is not None:
        return f"No passage matched the filter ({filter_description(asked.filter)})."
    if reason == NO_PASSAGES:
        if asked is not None and asked.mode == "sparse":
            return "No passage shares a word with the question (keyword search)."
        return "The search found no passages."
    if reason == BELOW_FLOOR:
        if best is not None and floor is not None:
            return (f"The best passage's similarity to the question is {best:.2f}, below the relevance floor "
                    f"of {floor:.2f} (QA_ANSWER_FLOOR).")
        return "The best passage is below the relevance floor (QA_ANSWER_FLOOR)."
    if reason == DECLINED:
        return f"{model or 'The language model'} read the {passages} passage{'' if passages == 1 else 's'} " \
               f"and said they do not answer the question."
    return ""


def suggestions(reason: str, question: str, asked: Asked | None) -> list[Suggestion]:
    """The next steps worth trying for `reason`: keyword search, more passages, no filter (or the
    hybrid search, after a keyword search found nothing)."""
    if asked is None:
        return []
    steps: list[Suggestion] = []
    if asked.filtered:
        steps.append(Suggestion("without_filter", "Search again without filters",
                                asked.params(question, contains=None, source=None, title=None, corpus=None)))
    if reason == FILTERED_OUT:
        return steps  # the filter decided: more passages or another mode find nothing either
    if asked.mode == "sparse":
        steps.append(Suggestion("hybrid", "Search by meaning and keywords (hybrid)",
                                asked.params(question, mode="hybrid")))
    elif reason != NO_PASSAGES:
        steps.append(Suggestion("keyword", "Search by keywords only (BM25)", asked.params(question, mode="sparse")))
    more = min(asked.max_top_k, max(MORE_PASSAGES, 2 * asked.top_k))
    if reason != NO_PASSAGES and more > asked.top_k:
        steps.append(Suggestion("more_passages", f"Show {more} passages",
                                asked.params(question, top_k=str(more))))
    return steps
