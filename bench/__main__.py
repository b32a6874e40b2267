"""Run the benchmarks: `.venv/bin/python -m bench [--quick] [--only a,b] [--skip a,b] [--scale-1m]`.

Writes bench/results/<timestamp>.json and regenerates docs/performance.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
import traceback
from pathlib import Path

from bench.common import BENCH, FULL, QUICK, ROOT, Context, Row, load_average, python_info

ORDER = ["ingestion", "latency", "throughput", "loop_lag", "scale", "onnx_backend"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (~2-3 min smoke run)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(ORDER)}")
    parser.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    parser.add_argument("--scale-1m", action="store_true", help="also insert 1,000,000 passages (~6+ min, ~3 GB)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (databases, logs)")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/performance.md")
    args = parser.parse_args()

    chosen = [n for n in ORDER if (not args.only or n in args.only.split(",")) and n not in args.skip.split(",")]
    sizes = QUICK if args.quick else FULL
    work = Path(tempfile.mkdtemp(prefix="qa_bench_"))
    ctx = Context(sizes=sizes, work=work)
    started = time.time()
    meta = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)), "mode": sizes.name,
        "benchmarks": chosen, "commit": _git("rev-parse", "--short", "HEAD"), "dirty_files": _git("status", "--porcelain").count("\n"),
        "cpu": _cpu(), **python_info(), "platform": platform.platform(), "load_before": load_average(),
        "work": str(work),
    }
    ctx.log(f"bench {sizes.name}: {', '.join(chosen)}; load average {meta['load_before']}; work {work}")
    errors: dict[str, str] = {}
    timings: dict[str, float] = {}
    for name in chosen:
        t0 = time.time()
        try:
            module = importlib.import_module(f"bench.{name}")
            if name == "scale" and args.scale_1m:
                module.run(ctx, tuple(sizes.scale_sizes) + (1_000_000,))
            else:
                module.run(ctx)
        except Exception as exc:  # one failing benchmark must not lose the others' results
            errors[name] = "".join(traceback.format_exception_only(type(exc), exc)).strip()[-1500:]
            ctx.log(f"{name} FAILED: {errors[name]}")
            traceback.print_exc()
            ctx.rows.append(Row(name, "failed", "", None, "", False, errors[name].splitlines()[-1][:200]))
        timings[name] = time.time() - t0
        ctx.log(f"{name} took {timings[name]:.0f} s")
    meta.update(seconds=time.time() - started, benchmark_seconds=timings, load_after=load_average(), errors=errors)
    result = {"meta": meta, "sizes": vars(sizes), "rows": [r.as_dict() for r in ctx.rows], "details": ctx.details}
    out_dir = BENCH / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(started))}-{sizes.name}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print()
    print(table(ctx.rows))
    print(f"\n{out.relative_to(ROOT)}; {meta['seconds'] / 60:.1f} min; load average before {meta['load_before']}, "
          f"after {meta['load_after']}")
    if not args.no_doc:
        from bench.report import write

        doc = write(result, out.relative_to(ROOT))
        print(f"wrote {doc.relative_to(ROOT)}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def table(rows: list[Row]) -> str:
    lines = ["| benchmark | measured | baseline | ratio | goal | met? |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}"
        met = "report" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.benchmark} | {r.measured} | {r.baseline} | {ratio} | {r.goal} | {met} |")
    return "\n".join(lines)


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x {os.cpu_count()}"
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
