"""The fixed prompt material for bench_llm.py: passages cut from data/python-docs and 12 questions.

Each passage is a few line ranges of one reST file (so the text is the repository's, reproducible).
Each question names the passage that answers it (None: the five passages do not answer it) and the
five passages it is asked with, in order; the answer's [n] is its position there.
"""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parents[3] / "data" / "python-docs"

# key: (file, [(first line, last line), ...] 1-based inclusive, label as the app shows it)
PASSAGES: dict[str, tuple[str, list[tuple[int, int]], str]] = {
    "lru": ("library/functools.rst", [(139, 167), (185, 191)], "functools > lru_cache"),
    "mkdir": ("library/pathlib.rst", [(968, 991)], "pathlib > Path.mkdir"),
    "run": ("library/subprocess.rst", [(38, 45), (53, 63), (71, 75)], "subprocess > run"),
    "dump": ("library/json.rst", [(137, 148), (166, 180)], "json > dump"),
    "field": ("library/dataclasses.rst", [(226, 256)], "dataclasses > field"),
    "groupby": ("library/itertools.rst", [(374, 398)], "itertools > groupby"),
    "tmpdir": ("library/tempfile.rst", [(132, 152)], "tempfile > TemporaryDirectory"),
    "suppress": ("library/contextlib.rst", [(271, 306)], "contextlib > suppress"),
    "connect": ("library/sqlite3.rst", [(259, 290)], "sqlite3 > connect"),
    "counter": ("library/collections.rst", [(242, 270)], "collections > Counter"),
}


def passage_text(key: str) -> str:
    name, ranges, _ = PASSAGES[key]
    lines = (DOCS / name).read_text(encoding="utf-8").splitlines()
    parts = ["\n".join(lines[a - 1:b]) for a, b in ranges]
    text = "\n\n".join(p.strip("\n") for p in parts)
    # dedent the directive body as the app's reST reader leaves it readable
    out = []
    for line in text.splitlines():
        out.append(line[3:] if line.startswith("   ") else line)
    return "\n".join(out).strip()


def label(key: str) -> str:
    return PASSAGES[key][2]


# The timing prompt: the lru_cache section plus four others (the brief's "real prompt").
TIMING = {
    "id": "timing",
    "question": "How can I see how many cache hits and misses a function decorated with lru_cache has had?",
    "passages": ["lru", "mkdir", "run", "dump", "field"],
}

# answer: the key of the passage that answers; expect: regexes (any one suffices) for a correct answer.
QUESTIONS: list[dict] = [
    {"id": "a1-cache-info", "answer": "lru", "passages": ["lru", "mkdir", "run", "dump", "field"],
     "question": "How can I see how many cache hits and misses a function decorated with lru_cache has had?",
     "expect": [r"cache_info"]},
    {"id": "a2-maxsize-none", "answer": "lru", "passages": ["counter", "groupby", "lru", "tmpdir", "connect"],
     "question": "What happens if I set maxsize to None in lru_cache?",
     "expect": [r"(disabled|without bound|unbounded|no limit|grow)"]},
    {"id": "a3-mkdir-parents", "answer": "mkdir", "passages": ["tmpdir", "mkdir", "suppress", "run", "dump"],
     "question": "How do I create a directory together with its missing parent directories, without an error if it already exists?",
     "expect": [r"parents\s*=\s*True.*exist_ok\s*=\s*True|exist_ok\s*=\s*True.*parents\s*=\s*True",
                r"parents.{0,80}exist_ok|exist_ok.{0,80}parents"]},
    {"id": "a4-run-check", "answer": "run", "passages": ["connect", "field", "counter", "tmpdir", "run"],
     "question": "How do I make subprocess.run raise an exception when the command exits with a non-zero status?",
     "expect": [r"check\s*=\s*True|\bcheck\b.{0,40}\btrue\b"]},
    {"id": "a5-default-factory", "answer": "field", "passages": ["groupby", "dump", "lru", "field", "suppress"],
     "question": "How do I give a dataclass field a mutable default value such as an empty list?",
     "expect": [r"default_factory"]},
    {"id": "a6-json-indent", "answer": "dump", "passages": ["dump", "counter", "mkdir", "groupby", "connect"],
     "question": "How do I pretty-print JSON output with indentation?",
     "expect": [r"indent"]},
    {"id": "a7-groupby-sorted", "answer": "groupby", "passages": ["suppress", "lru", "groupby", "run", "field"],
     "question": "Why does itertools.groupby usually need the input to be sorted first?",
     "expect": [r"(new group|break).{0,80}(key|change)|changes|consecutive"]},
    {"id": "a8-tmpdir-exit", "answer": "tmpdir", "passages": ["mkdir", "connect", "dump", "suppress", "tmpdir"],
     "question": "What happens to a TemporaryDirectory and its files when the with block ends?",
     "expect": [r"remov|delet|clean"]},
    # not answerable from the five passages; each set holds a tempting near-miss
    {"id": "u1-async-cache", "answer": None, "passages": ["lru", "counter", "field", "tmpdir", "groupby"],
     "question": "How do I cache the results of an async coroutine function so that awaiting it twice does not fail?"},
    {"id": "u2-postgres", "answer": None, "passages": ["connect", "dump", "run", "mkdir", "counter"],
     "question": "How do I connect to a PostgreSQL database from Python?"},
    {"id": "u3-http-timeout", "answer": None, "passages": ["run", "suppress", "connect", "dump", "tmpdir"],
     "question": "How do I set a timeout on an HTTP request made with urllib?"},
    {"id": "u4-dedupe-order", "answer": None, "passages": ["counter", "groupby", "field", "lru", "mkdir"],
     "question": "How do I remove duplicate items from a list while keeping their original order?"},
]

SYSTEM = (
    "You answer questions about Python using only the numbered passages in the user's message. "
    "After each sentence of your answer, cite the passage it comes from by its number in square brackets. "
    "If the passages do not contain the answer, reply only: I don't know; the passages do not answer this. "
    "Do not use outside knowledge, do not guess, and do not repeat the passages."
)

# The app's own wording (qa_app/answer.py INSTRUCTIONS), used in the user turn for gemma (its chat
# format drops system messages) and for the "app prompt" variant.
APP_INSTRUCTIONS = (
    "Answer the question using only the numbered passages. After each statement, cite the passage it "
    "comes from by its number in square brackets. If the passages do not contain the answer, say plainly "
    "that the documents do not answer the question. Do not use outside knowledge and do not guess."
)


def render_passages(keys: list[str]) -> str:
    return "\n".join(f"[{i}] {label(k)}\n{passage_text(k)}\n" for i, k in enumerate(keys, 1))


def messages(question: str, keys: list[str], style: str) -> list[dict[str, str]]:
    """style "system": grounding rules in a system message, passages + question in the user turn;
    style "user": the app's layout (one user message: passages, instructions, question; Qwen's
    template then adds its default system message); style "both": the system message and the app's
    user message (the rules again just before the question)."""
    passages = render_passages(keys)
    if style == "both":
        return [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"Passages:\n\n{passages}\n{APP_INSTRUCTIONS}\n\nQuestion: {question}"}]
    if style == "system":
        return [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"Passages:\n\n{passages}\nQuestion: {question}"}]
    return [{"role": "user", "content": f"Passages:\n\n{passages}\n{APP_INSTRUCTIONS}\n\nQuestion: {question}"}]


if __name__ == "__main__":
    for key in PASSAGES:
        text = passage_text(key)
        print(f"{key:10} {len(text.split()):4d} words {len(text):5d} chars")
    print(render_passages(TIMING["passages"]))
