"""Tables for README.md from results.jsonl (and grades.json, the hand review): python summarize.py"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(path: Path = HERE / "results.jsonl") -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    review = {}
    if (HERE / "grades.json").exists():
        review = json.loads((HERE / "grades.json").read_text())
    by = defaultdict(list)
    for r in rows:
        by[(r["model"], r["style"])].append(r)
    print("| model | style | GGUF MB | RSS MB | prompt tok (5 passages) | TTFT s | prefill tok/s | gen tok/s | "
          "total s | load (1-min) | correct /8 | right [n] /8 | refused /4 | false refusals | echo |")
    print("|" + "---|" * 15)
    for (model, style), rs in by.items():
        timing = [r for r in rs if r["kind"] == "timing"]
        server = next((r for r in rs if r["kind"] == "server_end"), None) or next(r for r in rs if r["kind"] == "server")
        qual = [r for r in rs if r["kind"] == "quality"]

        def med(key):
            vals = [r[key] for r in timing if r.get(key) is not None]
            return statistics.median(vals) if vals else float("nan")

        loads = [r["load_before"][0] for r in timing + qual]
        grades = []
        for r in qual:
            g = dict(r["grade"])
            g.update(review.get(f"{model}|{style}|{r['id']}", {}))
            grades.append((r, g))
        ans = [(r, g) for r, g in grades if not g["should_refuse"]]
        una = [(r, g) for r, g in grades if g["should_refuse"]]
        print(f"| {model} | {style} | {rs[0]['gguf_bytes'] / 1e6:.0f} | {server.get('rss_mb') or 0:.0f} | "
              f"{med('prompt_tokens'):.0f} | {med('ttft_s'):.1f} | {med('prefill_tokens_per_s'):.0f} | "
              f"{med('gen_tokens_per_s'):.1f} | {med('total_s'):.1f} | "
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
