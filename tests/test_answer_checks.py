"""Answer quality through the real app (real model, Milvus Lite): extracted answers that state the
answer, generated sentences checked against their citations (a scripted OpenAI-compatible server
plants an unsupported one), "no answer" with its reason and next-step links, and `qa-app eval
--answers` on a tiny set whose figures are worked out by hand."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from qa_app.cli import cli
from qa_app.embedding.encoder import DenseEncoder
from qa_app.settings import Settings
from qa_app.web import create_app
from tests.conftest import load_into, make_pipeline, run
from tests.llm_server import fake_llm_thread

SWARMS = ("A colony swarms when the old queen leaves the hive with about half of the workers to start a new "
          "colony, usually in late spring.")
LRU = ("The functools.lru_cache decorator keeps the results of an expensive function, so a second call with the "
       "same arguments returns the saved result at once.")
GARDEN = {
    "bees.md": f"""# Keeping bees

## Swarming

{SWARMS}

Beekeepers look for queen cells on the frames every week in spring: they are the first sign of a swarm.

## Swarm traps

Swarm traps are boxes hung in trees. When bees swarm, a swarm trap catches the swarm of bees. Bees swarm and
swarm again, and traps catch bees that swarm.
""",
    "tomatoes.md": """# Tomatoes

## Sowing

Sow tomato seeds indoors eight weeks before the last frost, and plant them out when the nights stay warm.

## Watering

Water tomatoes deeply twice a week; uneven watering splits the fruit.
""",
    "roses.md": """# Roses

## Pruning

Prune roses in late winter, just before the buds swell, cutting each stem above an outward-facing bud.
""",
    "caching.md": f"""# Caching in Python

## By hand

A cache can be kept in a dictionary:

    _cache = {{}}
    def compute(arg1, arg2):
        # Calculate the value, then cache the results of the expensive function
        result = expensive(arg1, arg2)
        _cache[(arg1, arg2)] = result
        return result

## With functools

{LRU}
""",
}


@pytest.fixture(scope="module")
def garden(tmp_path_factory: pytest.TempPathFactory, encoder: DenseEncoder) -> Settings:
    folder = tmp_path_factory.mktemp("garden")
    for name, text in GARDEN.items():
        (folder / "docs").mkdir(exist_ok=True)
        (folder / "docs" / name).write_text(text)
    settings = Settings(milvus_uri=str(folder / "garden.db"))
    run(load_into(settings, encoder, folder / "docs"))
    return settings


@pytest.fixture(scope="module")
def garden_client(garden: Settings, encoder: DenseEncoder) -> Iterator[TestClient]:
    with TestClient(create_app(garden, make_pipeline(garden, encoder))) as client:
        yield client


def next_step_links(page: str) -> dict[str, str]:
    """Action -> the path and query of each next-step link on a page."""
    links = {}
    for action, href in re.findall(r'<a class="next-step" data-action="(\w+)" href="([^"]+)"', page):
        url = urlsplit(html.unescape(href))
        links[action] = f"{url.path}?{url.query}"
    return links


def ask(client: TestClient, question: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = client.post("/ask", json={"question": question, "answer": True, **fields}).json()
    assert body["ok"] is True, body
    return body


# ---------------------------------------------------------------------------------------------- extracted


class _AnswerMarks(HTMLParser):
    """The text inside <mark class="answer"> elements, which hold the question words' own <mark>s."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0  # open marks inside an answer mark, itself included
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "mark" and (self.depth or ("class", "answer") in attrs):
            self.depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark" and self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.text.append(data)


def answer_marked_text(page: str) -> str:
    parser = _AnswerMarks()
    parser.feed(page)
    return "".join(parser.text)



@pytest.mark.parametrize("question,stating", [
    pytest.param("when do bees swarm", SWARMS, id="bees"),
    pytest.param("how do I cache the results of an expensive function", LRU, id="cache"),
])
def test_the_extracted_answer_is_the_sentence_that_states_it(garden_client: TestClient, question: str,
                                                             stating: str) -> None:
    body = ask(garden_client, question)
    answer = body["answer"]
    assert answer["kind"] == "extracted"
    first = answer["sentences"][0]
    assert first["text"] == stating and first["kind"] == "prose"
    # it comes from the highest passage that holds it, and is marked there on the page
    holders = [p["rank"] for p in body["passages"] if stating in p["text"]]
    assert first["rank"] == min(holders)
    assert all(s["kind"] == "prose" for s in answer["sentences"])
    page = garden_client.get("/", params={"q": question}).text
    assert answer_marked_text(page) == "".join(s["text"] for s in answer["sentences"])


# ---------------------------------------------------------------------------------------------- claims


def test_a_planted_unsupported_sentence_is_flagged_and_a_supported_one_passes(app_with: Any) -> None:
    tokens = ("Mauna Loa in Hawaii is the largest", " shield volcano on Earth [1].",
              " It was first climbed by a team of penguins in 1066 [1].", " Lava is hot.")
    with fake_llm_thread("ok", tokens=tokens) as fake:
        client = app_with(llm_url=fake.url)
        answer = ask(client, "which is the largest shield volcano?", top_k=3)["answer"]
        page = client.get("/", params={"q": "which is the largest shield volcano?", "top_k": 3, "answer": 1}).text
    assert answer["kind"] == "generated"
    assert [(c["text"], c["status"]) for c in answer["claims"]] == [
        ("Mauna Loa in Hawaii is the largest shield volcano on Earth [1].", "supported"),
        ("It was first climbed by a team of penguins in 1066 [1].", "unsupported"),
        ("Lava is hot.", "uncited"),
    ]
    assert answer["unsupported"] == 2
    supported, planted, _ = answer["claims"]
    assert supported["dense"] > planted["dense"] and supported["overlap"] > planted["overlap"]
    for claim in answer["claims"]:
        assert answer["text"][claim["start"]:claim["end"]] == claim["text"]
    # the page without JavaScript marks the two, and says how many
    marks = re.findall(r'<mark class="unsupported" title="([^"]+)">(.*?)</mark>', page)
    assert [(title, re.sub(r"<[^>]+>", "", text)) for title, text in marks] == [
        ("not supported by the passage it cites", "It was first climbed by a team of penguins in 1066 [1]."),
        ("cites no passage", "Lava is hot."),
    ]
    assert "2 sentences (marked) are not supported by the passages cited" in page


def test_the_stream_sends_the_checked_claims_in_done(app_with: Any) -> None:
    with fake_llm_thread("ok", tokens=("Mauna Loa in Hawaii is the largest shield volcano on Earth [1].",)) as fake:
        client = app_with(llm_url=fake.url)
        stream = client.get("/ask/stream", params={"q": "largest shield volcano", "top_k": 3}).text
    done = json.loads(stream.strip().split("\n\n")[-1].split("data: ", 1)[1])
    assert done["kind"] == "generated" and done["unsupported"] == 0
    assert [c["status"] for c in done["claims"]] == ["supported"]


# ---------------------------------------------------------------------------------------------- no answer


def test_a_model_that_declines_gives_no_answer_with_next_steps(app_with: Any) -> None:
    with fake_llm_thread("ok", tokens=("The passages do not answer", " this question.")) as fake:
        client = app_with(llm_url=fake.url)
        answer = ask(client, "which is the largest shield volcano?", top_k=3)["answer"]
        page = client.get("/", params={"q": "which is the largest shield volcano?", "top_k": 3, "answer": 1}).text
    assert (answer["kind"], answer["reason"], answer["text"]) == (
        "no_answer", "declined", "The passages do not answer this question.")
    assert answer["detail"] == "fake-model read the 3 passages and said they do not answer the question."
    assert [(s["action"], s["params"]) for s in answer["suggestions"]] == [
        ("keyword", {"q": "which is the largest shield volcano?", "mode": "sparse", "top_k": "3"}),
        ("more_passages", {"q": "which is the largest shield volcano?", "mode": "hybrid", "top_k": "10"}),
    ]
    assert answer["citations"] == []
    assert "fake-model read the 3 passages" in page
    assert next_step_links(page) == {"keyword": "/?q=which+is+the+largest+shield+volcano%3F&mode=sparse&top_k=3",
                                     "more_passages": "/?q=which+is+the+largest+shield+volcano%3F&mode=hybrid&top_k=10"}


def test_below_the_floor_the_reason_and_links_that_run_the_next_search(app_with: Any) -> None:
    client = app_with(answer_floor=0.3)
    question = "who won the 1998 football world cup final?"
    answer = ask(client, question)["answer"]
    assert (answer["kind"], answer["reason"]) == ("no_answer", "below_floor")
    assert re.fullmatch(r"The best passage's similarity to the question is 0\.\d\d, below the relevance floor "
                        r"of 0\.30 \(QA_ANSWER_FLOOR\)\.", answer["detail"])
    assert [s["action"] for s in answer["suggestions"]] == ["keyword", "more_passages"]
    page = client.get("/", params={"q": question}).text
    links = next_step_links(page)
    assert links == {"keyword": "/?q=who+won+the+1998+football+world+cup+final%3F&mode=sparse&top_k=5",
                     "more_passages": "/?q=who+won+the+1998+football+world+cup+final%3F&mode=hybrid&top_k=10"}
    keyword_page = client.get(links["keyword"])  # the link runs the keyword search
    assert keyword_page.status_code == 200 and '<option value="sparse" selected>' in keyword_page.text
    more = client.get(links["more_passages"]).text
    assert more.count('<li class="passage"') == 10


def test_no_passage_matching_the_filter_is_said_and_the_link_drops_the_filter(client: TestClient) -> None:
    body = ask(client, "largest shield volcano", filter={"title": "No such title"})
    answer = body["answer"]
    assert body["passages"] == []
    assert (answer["kind"], answer["reason"], answer["detail"]) == (
        "no_answer", "filtered_out", "No passage matched the filter (title 'No such title').")
    assert [s["params"] for s in answer["suggestions"]] == [{"q": "largest shield volcano", "mode": "hybrid",
                                                             "top_k": "5"}]
    page = client.get("/", params={"q": "largest shield volcano", "title": "No such title"}).text
    assert "No passage matched the filter (title &#39;No such title&#39;)." in page
    assert next_step_links(page) == {"without_filter": "/?q=largest+shield+volcano&mode=hybrid&top_k=5"}
    assert ">Search again without filters</a>" in page


# ---------------------------------------------------------------------------------------------- eval --answers


def test_eval_answers_figures_by_hand(garden: Settings, tmp_path: Path) -> None:
    queries = [
        {"_id": "bees", "text": "when do bees swarm"},
        {"_id": "cache", "text": "how do I cache the results of an expensive function"},
        {"_id": "roses", "text": "when should I prune roses?"},
    ]
    # bees and roses hold their keywords; cache's keyword is in no document, so it cannot pass
    answers = [{"_id": "bees", "answer": SWARMS, "keywords": ["late spring|in spring", "queen"]},
               {"_id": "cache", "answer": LRU, "keywords": ["no-such-keyword"]},
               {"_id": "roses", "answer": "In late winter.", "keywords": ["late winter"]}]
    off_topic = [{"_id": "o1", "text": "who won the 1998 football world cup final?"},
                 {"_id": "o2", "text": "what is the capital of Mongolia?"}]
    # cache's gold page is roses.md, so its citations (of caching.md) are not gold
    qrels = "query-id\tcorpus-id\tscore\nbees\tdocs/bees.md\t2\ncache\tdocs/roses.md\t2\nroses\tdocs/roses.md\t2\n"
    for name, rows in (("q.jsonl", queries), ("a.jsonl", answers), ("o.jsonl", off_topic)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "qrels.tsv").write_text(qrels)
    result = CliRunner().invoke(cli, [
        "eval", "--queries", str(tmp_path / "q.jsonl"), "--qrels", str(tmp_path / "qrels.tsv"),
        "--answers", str(tmp_path / "a.jsonl"), "--off-topic", str(tmp_path / "o.jsonl"), "--top-k", "3",
        "--milvus-uri", garden.milvus_uri, "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["questions"], report["off_topic"], report["top_k"], report["mode"]) == (3, 2, 3, "hybrid")
    assert list(report["answers"]) == ["extracted"]  # no LLM configured
    extracted = report["answers"]["extracted"]
    # every extract here quotes one sentence: bees (bees.md) and roses (roses.md) cite their gold page,
    # cache cites caching.md, which its qrels do not judge
    assert extracted["contains"] == round(2 / 3, 4)
    assert extracted["citation_precision"] == round(2 / 3, 4) and extracted["cited"] == 3
    # both off-topic questions fall below the 0.35 floor; no answerable one does
    assert (extracted["refusal_precision"], extracted["refusal_recall"], extracted["answered"]) == (1.0, 1.0, 1.0)
    table = CliRunner().invoke(cli, [
        "eval", "--queries", str(tmp_path / "q.jsonl"), "--qrels", str(tmp_path / "qrels.tsv"),
        "--answers", str(tmp_path / "a.jsonl"), "--milvus-uri", garden.milvus_uri, "--quiet"])
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines()[0].split() == ["answer", "contains", "citation_precision", "refusal_precision",
                                                    "refusal_recall", "answered", "unsupported", "chars", "seconds"]
    assert table.stdout.splitlines()[1].split()[:2] == ["extracted", "0.667"]
