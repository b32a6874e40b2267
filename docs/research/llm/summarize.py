"""Tables for README.md from results.jsonl (and grades.json, the hand review): python summarize.py"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_llm  # noqa: E402  (grade(): the automatic grades, recomputed from the stored text)
import cases  # noqa: E402

CASES = {c["id"]: c for c in cases.QUESTIONS}


def final_grade(r: dict, review: dict) -> dict:
    """The automatic grade of the stored answer, then the hand review's corrections (grades.json)."""
    case = CASES[r["id"]]
    g = bench_llm.grade(case, r["text"], bench_llm.prompt_text(cases.messages(case["question"], case["passages"], r["style"])))
    g.update(review.get(f"{r['model']}|{r['style']}|{r['id']}", {}))
    return g


def main(path: Path = HERE / "results.jsonl") -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    review = {}
    if (HERE / "grades.json").exists():
        review = json.loads((HERE / "grades.json").read_text())
    by = defaultdict(list)
    for r in rows:
        by[(r["model"], r["style"])].append(r)
    print("| model | prompt style | GGUF MB | RSS MB | prompt tokens (timing prompt) | TTFT s | prefill tok/s | gen tok/s | "
          "total s | TTFT s, median of the quality prompts | load (1-min) | correct | right [n] | refused when it should | false refusals | echo |")
    print("|" + "---|" * 16)
    for (model, style), rs in by.items():
        timing = [r for r in rs if r["kind"] == "timing"]
        server = next((r for r in rs if r["kind"] == "server_end"), None) or next(r for r in rs if r["kind"] == "server")
        qual = [r for r in rs if r["kind"] == "quality"]

        def med(key, src=timing):
            vals = [r[key] for r in src if r.get(key) is not None]
            return statistics.median(vals) if vals else float("nan")

        def f(x, fmt):
            return "—" if x != x else format(x, fmt)

        loads = [r["load_before"][0] for r in timing + qual]
        grades = []
        for r in qual:
            grades.append((r, final_grade(r, review)))
        ans = [(r, g) for r, g in grades if not g["should_refuse"]]
        una = [(r, g) for r, g in grades if g["should_refuse"]]
        print(f"| {model} | {style} | {rs[0]['gguf_bytes'] / 1e6:.0f} | {server.get('rss_mb') or 0:.0f} | "
              f"{f(med('prompt_tokens'), '.0f')} | {f(med('ttft_s'), '.1f')} | {f(med('prefill_tokens_per_s'), '.0f')} | "
              f"{f(med('gen_tokens_per_s'), '.1f')} | {f(med('total_s'), '.1f')} | {f(med('ttft_s', qual), '.0f')} | "
              f"{min(loads) if loads else 0:.1f}-{max(loads) if loads else 0:.1f} | "
              f"{sum(g['correct'] for _, g in ans)}/{len(ans)} | {sum(bool(g['right_citation']) for _, g in ans)}/{len(ans)} | "
              f"{sum(g['correct'] for _, g in una)}/{len(una)} | {sum(g['refused'] for _, g in ans)} | "
              f"{sum(g['echo'] for _, g in grades)}/{len(grades)} |")
    print()
    print("| model | style | passages | prompt tokens | TTFT s | prefill tok/s | load |")
    print("|---|---|---|---|---|---|---|")
    for (model, style), rs in by.items():
        for r in rs:
            if r["kind"] == "context":
                print(f"| {model} | {style} | {r['n_passages']} | {r['prompt_tokens']} | {r['ttft_s']:.1f} | "
                      f"{r['prefill_tokens_per_s']:.0f} | {r['load_before'][0]:.1f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results.jsonl")
