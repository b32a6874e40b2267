"""Pure logic of answer quality: how extracted sentences are scored (fixed vectors stand in for the
model), the claim check of generated sentences, the reasons and next steps of "no answer", and the
answer metrics, computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from qa_app.answer import Answer, Answerer, Asked, Claim, check_claims, declines, extractive_answer
from qa_app.answer.claims import Thresholds, claim_spans, declined
from qa_app.answer.extractive import WEIGHTS, passage_units
from qa_app.answer.next_steps import suggestions
from qa_app.evaluation import AnswerCounts, GoldAnswer, contains_keywords
from qa_app.models import Passage, TextFilter

pytestmark = pytest.mark.unit


def passage(n: int, text: str, *, title: str = "Bees", headings: tuple[str, ...] = (), source: str = "") -> Passage:
    return Passage(id=f"p{n}", rank=n, score=1.0 / n, text=text, source=source or f"/docs/page{n}.md", doc_id="",
                   title=title, headings=headings, chunk=0)


def unit_vector(*weights: float) -> np.ndarray:
    vector = np.zeros(8, dtype=np.float32)
    vector[: len(weights)] = weights
    return vector / np.linalg.norm(vector)


QUESTION = unit_vector(1)  # the question's vector: every other text is given its cosine to it


def at(cosine: float, axis: int = 1) -> np.ndarray:
    """A unit vector whose cosine to QUESTION is `cosine` (the rest of it along `axis`)."""
    vector = np.zeros(8, dtype=np.float32)
    vector[0], vector[axis] = cosine, np.sqrt(1 - cosine ** 2)
    return vector


STATES = "A colony swarms when the old queen leaves the hive with half of the workers, usually in late spring."
GARDEN = [
    passage(1, "Swarming\n\nBees are social insects that live in colonies. " + STATES, headings=("Swarming",)),
    passage(2, "Hives need dry ground and shelter from the wind. Keep them away from paths."),
    passage(3, "Do bees swarm? When bees swarm, swarm traps catch swarming bees."),
]


# ---------------------------------------------------------------------------------------------- units


def test_units_keep_code_blocks_whole_and_classify_what_is_not_prose() -> None:
    text = ("Caching results\n\nThe simplest way is a dictionary:\n\n    _cache = {}\n    def f(a, b):\n"
            "        # Calculate the value\n        _cache[(a, b)] = result\n\n"
            "Use functools.lru_cache to remember the results of a function. How do I cache methods?\n"
            "- a list item that is long enough to read\n- short")
    units = passage_units(1, passage(1, text))
    assert [(u.kind, u.text.split("\n")[0]) for u in units] == [
        ("heading", "Caching results"),
        ("lead_in", "The simplest way is a dictionary:"),
        ("code", "_cache = {}"),
        ("prose", "Use functools.lru_cache to remember the results of a function."),
        ("question", "How do I cache methods?"),
        ("prose", "- a list item that is long enough to read"),
        ("fragment", "- short"),
    ]
    assert units[2].text.endswith("_cache[(a, b)] = result")  # the whole block, one unit
    for unit in units:
        assert text[unit.start:unit.end] == unit.text


# ---------------------------------------------------------------------------------------------- scoring


def test_the_dense_score_picks_the_sentence_that_states_the_answer() -> None:
    question = "when do bees swarm"
    # The keyword-stuffed sentence of passage 3 shares every word with the question, the stating one
    # of passage 1 only "swarm"; the model puts the stating one closer.
    vectors = {question: QUESTION, STATES: at(0.70), "Do bees swarm?": at(0.72, 2),
               "When bees swarm, swarm traps catch swarming bees.": at(0.62, 3),
               "Bees are social insects that live in colonies.": at(0.40, 4), "Swarming": at(0.5, 5),
               "Hives need dry ground and shelter from the wind.": at(0.2, 6), "Keep them away from paths.": at(0.1, 7)}
    chosen = extractive_answer(question, GARDEN, vectors=vectors)
    assert [(s.passage_id, s.text) for s in chosen] == [("p1", STATES)]
    # by keywords alone, passage 3's stuffed sentence wins: the defect the dense score fixes
    assert extractive_answer(question, GARDEN)[0].passage_id == "p3"


def test_a_lower_passage_wins_only_when_it_says_it_better_by_more_than_the_rank_step() -> None:
    same, other = "The queen leaves with the workers in spring.", "The old queen leaves in May."
    passages = [passage(1, same), passage(2, "Unrelated words about hives."), passage(3, other)]
    question = "when does the queen leave"
    vectors = {question: QUESTION, same: at(0.60), "Unrelated words about hives.": at(0.1, 2), other: at(0.60, 3)}
    assert [s.passage_id for s in extractive_answer(question, passages, vectors=vectors)] == ["p1"]
    vectors[other] = at(0.60 + 2 * WEIGHTS.rank_step + 0.01, 3)
    assert [s.passage_id for s in extractive_answer(question, passages, vectors=vectors)] == ["p3"]


def test_code_loses_to_prose_unless_the_question_asks_for_code() -> None:
    code = "# cache the results of the expensive function\n_cache[(arg1, arg2)] = expensive(arg1, arg2)"
    prose = "Decorate the function with functools.lru_cache to cache its results."
    passages = [passage(1, code + "\n\n" + prose, title="Caching")]
    question = "how do I cache the results of an expensive function"
    vectors = {question: QUESTION, code: at(0.75), prose: at(0.55, 2)}  # the code's comment repeats the question
    assert [s.kind for s in extractive_answer(question, passages, vectors=vectors)] == ["prose"]
    asking = "show me example code to cache the results of an expensive function"
    vectors[asking] = QUESTION
    assert extractive_answer(asking, passages, vectors=vectors)[0].kind == "code"


def test_a_question_that_restates_the_question_is_not_the_answer() -> None:
    text = "How do I cache method calls?\n\nA method cache is kept with functools.cached_property on the instance."
    passages = [passage(1, text)]
    question = "How do I cache method calls?"
    answer = "A method cache is kept with functools.cached_property on the instance."
    vectors = {question: QUESTION, answer: at(0.6)}  # the FAQ's heading is the question itself: cosine 1
    assert [s.text for s in extractive_answer(question, passages, vectors=vectors)] == [answer]


def test_more_sentences_only_from_the_best_ones_passage_and_close_to_it_in_score() -> None:
    first, second, third = "Queens leave in late spring.", "The swarm settles on a branch.", "Bees make honey."
    far = "Swarms are collected in boxes."
    passages = [passage(1, f"{first} {second} {third}"), passage(2, far)]
    q = "when do queens leave and where does the swarm go"
    vectors = {q: QUESTION, first: at(0.7), second: at(0.6, 2), third: at(0.7 - WEIGHTS.more_margin - 0.11, 3),
               far: at(0.69, 4)}
    assert [s.text for s in extractive_answer(q, passages, vectors=vectors)] == [first, second]
    assert [s.text for s in extractive_answer(q, passages, vectors=vectors, max_sentences=1)] == [first]


def test_a_sentence_cut_by_code_is_kept_whole_and_a_signature_goes_with_its_description() -> None:
    text = ("The function sink,\n\n> sink(\"record.lis\")\n\nwill divert all output to a file.\n\n"
            "shutil.copytree(src, dst)\n\nRecursively copy a directory tree. It returns the new directory.")
    units = passage_units(1, passage(1, text))
    assert [(u.kind, u.text) for u in units] == [
        ("prose", "The function sink,\n\n> sink(\"record.lis\")\n\nwill divert all output to a file."),
        ("prose", "shutil.copytree(src, dst)\n\nRecursively copy a directory tree."),
        ("prose", "It returns the new directory."),
    ]


# ---------------------------------------------------------------------------------------------- claims


def test_claims_are_sentences_and_markers_after_a_full_stop_belong_to_the_one_before() -> None:
    text = "Bees swarm in spring. [1] The queen leaves first [1, 2].\n- They settle nearby [2]\n```\nx[1] = 2\n```"
    assert [text[s:e] for s, e in claim_spans(text)] == [
        "Bees swarm in spring. [1]", "The queen leaves first [1, 2].", "- They settle nearby [2]"]


def test_the_claim_check_flags_uncited_and_unsupported_sentences() -> None:
    passages = [passage(1, STATES), passage(2, "Hives need dry ground and shelter from the wind.")]
    answer = ("A colony swarms in late spring when the old queen leaves [1]. "
              "Swarms are led by drones that sing [1]. Hives need shelter from the wind.")
    supported = "A colony swarms in late spring when the old queen leaves"
    vectors = {supported + ".": unit_vector(1, 0.1), "Swarms are led by drones that sing.": unit_vector(0, 1),
               STATES[:1200]: unit_vector(1), STATES: unit_vector(1)}
    claims = check_claims(answer, passages, vectors, Thresholds(dense=0.5, overlap=0.5))
    assert [(c.status, c.citations, c.passage) for c in claims] == [
        ("supported", (1,), 1), ("unsupported", (1,), 1), ("uncited", (), None)]
    assert claims[0].dense == pytest.approx(float(unit_vector(1, 0.1)[0]), abs=1e-4) and claims[0].overlap == 1.0
    assert claims[1].dense == 0.0 and claims[1].overlap < 0.5
    # without vectors the overlap alone decides: "drones that sing" shares only "swarm" with passage 1
    assert [c.status for c in check_claims(answer, passages)] == ["supported", "unsupported", "uncited"]


def test_a_citation_given_once_for_several_sentences_covers_them_and_is_still_checked() -> None:
    passages = [passage(1, STATES), passage(2, "Hives need dry ground and shelter from the wind.")]
    # the paragraph's citation at its end covers its sentences; not those of the paragraph before
    answer = ("Bees are kept for honey.\n\nA colony swarms in late spring. The old queen leaves the hive [1].\n\n"
              "Hives need dry ground. They need shelter from the wind.\n\nThis information is from passage [2].")
    claims = check_claims(answer, passages)
    assert [(c.text.strip(), c.status, c.citations) for c in claims] == [
        ("Bees are kept for honey.", "uncited", ()),
        ("A colony swarms in late spring.", "supported", (1,)),
        ("The old queen leaves the hive [1].", "supported", (1,)),
        ("Hives need dry ground.", "supported", (2,)),  # a line that only names its source covers the lines before
        ("They need shelter from the wind.", "supported", (2,)),
        ("This information is from passage [2].", "source", (2,)),
    ]
    # what a sentence inherits is checked like its own citation: the passage must support it
    flagged = check_claims("Swarms are led by drones that sing. Passage [1].", passages)
    assert [(c.status, c.citations) for c in flagged] == [("unsupported", (1,)), ("source", (1,))]


def test_a_claim_is_supported_by_any_one_of_the_passages_it_cites() -> None:
    passages = [passage(1, "Hives need dry ground."), passage(2, STATES)]
    claims = check_claims("The old queen leaves the hive in late spring [1, 2].", passages)
    assert [(c.status, c.passage) for c in claims] == [("supported", 2)]


@pytest.mark.parametrize("sentence,expected", [
    ("The documents do not answer the question.", True),
    ("The provided passages don't mention how long to boil an egg.", True),
    ("There is no information about rugby in the passages.", True),
    ("I don't know.", True),
    ("This does not include the trailing newline [1].", False),
    ("A list is not hashable because it can change [2].", False),
])
def test_declines_are_recognised(sentence: str, expected: bool) -> None:
    assert declines(sentence) is expected


def test_an_answer_declines_when_it_opens_with_a_decline_and_supports_nothing() -> None:
    passages = [passage(1, STATES)]
    assert declined(check_claims("The passages do not say how to boil an egg.", passages))
    assert not declined(check_claims("The passages do not say more. A colony swarms in late spring [1].", passages))
    assert not declined([Claim(0, 5, "Bees.", (1,), "supported")])


# ---------------------------------------------------------------------------------------------- no answer


def test_next_steps_for_each_reason_are_the_searches_to_run() -> None:
    narrow = Asked("hybrid", 5, TextFilter(contains="queen", source="bees"), max_top_k=50)
    assert [(s.action, s.params) for s in suggestions("filtered_out", "when do bees swarm?", narrow)] == [
        ("without_filter", {"q": "when do bees swarm?", "mode": "hybrid", "top_k": "5"})]
    assert [(s.action, s.params) for s in suggestions("below_floor", "when do bees swarm?", narrow)] == [
        ("without_filter", {"q": "when do bees swarm?", "mode": "hybrid", "top_k": "5"}),
        ("keyword", {"q": "when do bees swarm?", "mode": "sparse", "top_k": "5", "contains": "queen", "source": "bees"}),
        ("more_passages", {"q": "when do bees swarm?", "mode": "hybrid", "top_k": "10", "contains": "queen",
                           "source": "bees"}),
    ]
    keyword = Asked("sparse", 40, TextFilter(corpora=("garden",)), max_top_k=50)
    assert [(s.action, s.params) for s in suggestions("declined", "q", keyword)] == [
        ("without_filter", {"q": "q", "mode": "sparse", "top_k": "40"}),
        ("hybrid", {"q": "q", "mode": "hybrid", "top_k": "40", "corpus": "garden"}),
        ("more_passages", {"q": "q", "mode": "sparse", "top_k": "50", "corpus": "garden"}),
    ]
    assert [s.action for s in suggestions("no_passages", "q", Asked("sparse"))] == ["hybrid"]
    assert suggestions("below_floor", "q", None) == []


def run(coro):  # type: ignore[no-untyped-def]
    import asyncio

    return asyncio.run(coro)


def test_no_answer_says_why_with_its_figures() -> None:
    low = [Passage(id="p1", source="s", doc_id="", title="t", headings=(), chunk=0, text="Lava is hot.", rank=1,
                   score=0.21)]
    answer = run(Answerer(None, floor=0.35).extract("who won the cup?", low, Asked("hybrid", 5)))
    data = answer.as_dict()
    assert (data["kind"], data["reason"]) == ("no_answer", "below_floor")
    assert data["detail"] == ("The best passage's similarity to the question is 0.21, below the relevance floor "
                              "of 0.35 (QA_ANSWER_FLOOR).")
    assert [s["action"] for s in data["suggestions"]] == ["keyword", "more_passages"]
    filtered = run(Answerer(None).extract("q", [], Asked("hybrid", 5, TextFilter(title="Bread")))).as_dict()
    assert (filtered["reason"], filtered["detail"]) == ("filtered_out", "No passage matched the filter (title 'Bread').")
    assert run(Answerer(None).extract("q", [])).as_dict()["reason"] == "no_passages"


# ---------------------------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("text,keywords,expected", [
    ("Use functools.lru_cache.", ["lru_cache|@cache"], True),
    ("Use @CACHE on it.", ["lru_cache|@cache"], True),
    ("Use a dict.", ["lru_cache|@cache"], False),
    ("Files .RData and .Rhistory", [".RData", ".Rhistory"], True),
    ("Only .RData", [".RData", ".Rhistory"], False),
])
def test_keywords_match_any_alternative_case_insensitively(text: str, keywords: list[str], expected: bool) -> None:
    assert contains_keywords(text, keywords) is expected


def test_answer_metrics_by_hand() -> None:
    gold_page, other_page = "/docs/functools.html", "/docs/other.html"
    shown = [passage(1, "x", source=gold_page), passage(2, "y", source=other_page)]
    suffixes = {"functools.html": "functools.html"}
    judged = {"functools.html": 2}
    cite = [{"number": 1, "passage_id": "p1", "rank": 1}, {"number": 2, "passage_id": "p2", "rank": 2}]
    counts = AnswerCounts("extracted")
    gold = GoldAnswer("Use lru_cache.", ("lru_cache",))
    counts.add("q1", Answer("extracted", "Use lru_cache [1] [2]", citations=cite), gold=gold, judged=judged,
               suffixes=suffixes, passages=shown)  # contains; cites 1 gold of 2
    counts.add("q2", Answer("extracted", "Use a dict [1]", citations=cite[:1]), gold=gold, judged=judged,
               suffixes=suffixes, passages=shown)  # misses; cites 1 gold of 1
    counts.add("q3", Answer("no_answer", "none"), gold=gold, judged=judged, suffixes=suffixes,
               passages=shown)  # an answerable question refused
    counts.add("o1", Answer("no_answer", "none"), gold=None, judged={}, suffixes=suffixes, passages=shown)
    counts.add("o2", Answer("extracted", "Eggs [2]", citations=cite[1:]), gold=None, judged={}, suffixes=suffixes,
               passages=shown)  # an off-topic question answered
    data = counts.as_dict()
    assert data["contains"] == round(1 / 3, 4)  # of the 3 answerable questions
    assert data["citation_precision"] == round(2 / 3, 4)  # cited passages of answerable questions: 3, gold 2
    assert data["refusal_recall"] == 0.5  # 1 of 2 off-topic refused
    assert data["refusal_precision"] == 0.5  # refused: o1 and q3
    assert data["answered"] == round(2 / 3, 4)
    assert (data["questions"], data["off_topic"], data["cited"]) == (3, 2, 3)
    assert counts.per_question["q1"] == {"kind": "extracted", "text": "Use lru_cache [1] [2]", "contains": True,
                                         "cited": 2, "cited_gold": 1}
