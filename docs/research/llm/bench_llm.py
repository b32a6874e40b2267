"""Measure a local GGUF model behind llama-cpp-python's OpenAI-compatible server, as qa_app uses it.

    python docs/research/llm/bench_llm.py --model PATH --alias NAME [--chat-format gemma] \
        [--style system|user] [--out docs/research/llm/results.jsonl] [--skip-timing] [--skip-quality]

Starts the server itself (the flags of scripts/local_llm.sh, OMP_WAIT_POLICY=PASSIVE), then:
- timing: the 5-passage lru_cache prompt, 3 runs (a short different request between runs so that
  llama.cpp's prefix reuse does not hide the prompt cost), streamed over /v1/chat/completions with
  httpx; TTFT, generation tokens/s, total, prompt tokens (from a non-streamed max_tokens=1 repeat,
  whose usage the server fills in and which costs nothing as the prefix is cached);
- context: the same question with 3 passages vs 5;
- quality: the 12 questions of cases.py, each streamed once, with automatic grades.
Each measurement is one JSON line with the load average before and after it.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cases  # noqa: E402

HERE = Path(__file__).resolve().parent
MAX_TOKENS = 384  # the app's QA_LLM_MAX_TOKENS default

REFUSAL = re.compile(
    r"(don'?t know|do not know|not (contain|mention|provide|include|cover|answer|specif|describ|discuss|address)|"
    r"no (information|mention|passage)|cannot (find|answer|be answered)|can'?t (find|answer)|"
    r"isn'?t (mentioned|covered|provided)|(passages|documents) do(es)? not|unable to (find|answer))", re.I)
CITE = re.compile(r"(?<![\w)])\[\s*(\d{1,2}(?:\s*[,;-]\s*\d{1,2})*)\s*\]")
CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.S)  # as the app does: no citations inside code


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(python: str, model: str, alias: str, port: int, chat_format: str | None,
                 threads: int, log: Path) -> tuple[subprocess.Popen, float]:
    cmd = [python, "-m", "llama_cpp.server", "--model", model, "--model_alias", alias,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", str(threads),
           "--interrupt_requests", "False"]
    if chat_format:
        cmd += ["--chat_format", chat_format]
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}; see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                return proc, time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("server not ready in 120 s")


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def stream(base: str, alias: str, msgs: list[dict], max_tokens: int = MAX_TOKENS) -> dict:
    payload = {"model": alias, "messages": msgs, "max_tokens": max_tokens, "temperature": 0.0, "stream": True}
    pieces: list[str] = []
    times: list[float] = []
    finish = None
    t0 = time.perf_counter()
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=payload,
                      timeout=httpx.Timeout(600, connect=5)) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            choice = (chunk.get("choices") or [{}])[0]
            finish = choice.get("finish_reason") or finish
            content = (choice.get("delta") or {}).get("content")
            if content:
                pieces.append(content)
                times.append(time.perf_counter() - t0)
    total = time.perf_counter() - t0
    text = "".join(pieces)
    # prompt tokens as the server counts them: the same request, not streamed, one token (prefix cached)
    usage = httpx.post(f"{base}/v1/chat/completions", timeout=600,
                       json={"model": alias, "messages": msgs, "max_tokens": 1, "temperature": 0.0}).json()["usage"]
    completion_tokens = count_tokens(base, text) if text else 0
    ttft = times[0] if times else None
    gen_s = (times[-1] - times[0]) if len(times) > 1 else None
    tps = (completion_tokens - 1) / gen_s if gen_s and completion_tokens > 1 else None
    return {"text": text, "finish_reason": finish, "prompt_tokens": usage["prompt_tokens"],
            "completion_tokens": completion_tokens, "chunks": len(pieces), "ttft_s": ttft,
            "gen_tokens_per_s": tps, "total_s": total,
            "prefill_tokens_per_s": usage["prompt_tokens"] / ttft if ttft else None}


def count_tokens(base: str, text: str) -> int:
    r = httpx.post(f"{base}/extras/tokenize/count", json={"input": text}, timeout=60)
    r.raise_for_status()
    return int(r.json()["count"])


def reset_prefix(base: str, alias: str) -> None:
    """A tiny request with another opening, so the next prompt is evaluated from its start."""
    httpx.post(f"{base}/v1/chat/completions", timeout=120,
               json={"model": alias, "max_tokens": 1, "temperature": 0.0,
                     "messages": [{"role": "user", "content": "Say OK."}]})


def cited(text: str) -> list[int]:
    out: list[int] = []
    for m in CITE.finditer(CODE.sub(" ", text)):
        for part in re.split(r"\s*[,;]\s*", m.group(1)):
            if "-" in part:
                a, b = (int(x) for x in part.split("-"))
                nums = range(a, b + 1) if 0 < b - a < 6 else (a, b)
            else:
                nums = (int(part),)
            out.extend(n for n in nums if n not in out)
    return out


def echo_span(text: str, prompt: str) -> int:
    """Length of the longest run of the answer copied verbatim from the prompt."""
    if not text:
        return 0
    m = difflib.SequenceMatcher(None, prompt, text, autojunk=False).find_longest_match(0, len(prompt), 0, len(text))
    return m.size


def grade(case: dict, text: str, prompt: str) -> dict:
    nums = cited(text)
    refused = bool(REFUSAL.search(text))
    span = echo_span(text, prompt)
    g = {"cited": nums, "refused": refused, "echo_chars": span,
         "echo": span >= 200 or text.lstrip().startswith(("Passages:", "[1] ")) or "Question:" in text}
    if case["answer"] is None:
        g["should_refuse"] = True
        g["correct"] = refused
        g["right_citation"] = None
    else:
        pos = case["passages"].index(case["answer"]) + 1
        g["should_refuse"] = False
        g["answer_position"] = pos
        g["correct"] = any(re.search(p, text, re.I | re.S) for p in case["expect"])
        g["right_citation"] = pos in nums
        g["wrong_citations"] = [n for n in nums if n != pos]
    return g


def prompt_text(msgs: list[dict]) -> str:
    return "\n".join(m["content"] for m in msgs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--alias", required=True)
    ap.add_argument("--chat-format")
    ap.add_argument("--style", choices=["system", "user", "both"], default="system")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--python", default=str(Path(sys.executable)))
    ap.add_argument("--out", default=str(HERE / "results.jsonl"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--skip-quality", action="store_true")
    ap.add_argument("--only", help="comma-separated question ids")
    ap.add_argument("--context-reps", type=int, default=1,
                    help="how many times to alternate the 3- and 5-passage prompts")
    args = ap.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = Path(f"/tmp/llm-server-{args.alias}.log")
    proc, ready_s = start_server(args.python, args.model, args.alias, port, args.chat_format, args.threads, log)
    common = {"model": args.alias, "gguf": args.model, "gguf_bytes": os.path.getsize(args.model),
              "style": args.style, "chat_format": args.chat_format, "threads": args.threads}
    out = open(args.out, "a", encoding="utf-8")

    def emit(rec: dict) -> None:
        rec = {**common, **rec, "at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        out.flush()
        brief = {k: rec.get(k) for k in ("kind", "id", "run", "prompt_tokens", "completion_tokens", "ttft_s",
                                          "gen_tokens_per_s", "total_s", "load_before")}
        print(json.dumps(brief), flush=True)
        if rec.get("text") is not None:
            print("   ", rec["text"][:300].replace("\n", " | "), flush=True)
            if "grade" in rec:
                print("   ", rec["grade"], flush=True)

    try:
        emit({"kind": "server", "ready_s": round(ready_s, 2), "rss_mb": rss_mb(proc.pid), "load_before": loadavg()})
        reset_prefix(base, args.alias)  # warm-up
        if not args.skip_timing:
            msgs = cases.messages(cases.TIMING["question"], cases.TIMING["passages"], args.style)
            for run in range(1, args.runs + 1):
                reset_prefix(base, args.alias)
                lb = loadavg()
                res = stream(base, args.alias, msgs)
                emit({"kind": "timing", "id": "timing-5", "run": run, "n_passages": 5, **res,
                      "load_before": lb, "load_after": loadavg()})
        if not args.skip_timing or args.context_reps > 1:
            for rep, n in [(rep, n) for rep in range(1, args.context_reps + 1) for n in (3, 5)]:
                reset_prefix(base, args.alias)
                lb = loadavg()
                msgs = cases.messages(cases.TIMING["question"], cases.TIMING["passages"][:n], args.style)
                res = stream(base, args.alias, msgs)
                emit({"kind": "context", "id": f"timing-{n}", "run": rep, "n_passages": n, **res,
                      "load_before": lb, "load_after": loadavg()})
        if not args.skip_quality:
            only = set(args.only.split(",")) if args.only else None
            for case in cases.QUESTIONS:
                if only and case["id"] not in only:
                    continue
                reset_prefix(base, args.alias)
                msgs = cases.messages(case["question"], case["passages"], args.style)
                lb = loadavg()
                res = stream(base, args.alias, msgs)
                emit({"kind": "quality", "id": case["id"], "question": case["question"],
                      "passages": case["passages"], "answer_passage": case["answer"], **res,
                      "grade": grade(case, res["text"], prompt_text(msgs)),
                      "load_before": lb, "load_after": loadavg()})
        emit({"kind": "server_end", "rss_mb": rss_mb(proc.pid), "load_before": loadavg()})
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        out.close()


if __name__ == "__main__":
    main()
