"""Run the benchmarks: `.venv/bin/python -m bench [--quick] [--only a,b] [--skip a,b] [--scale-1m] [--cpu native,avx2,avx2-vnni]`.

Prints the CPU model and its flags, runs the benchmarks on this CPU, then again in a child process per
emulated laptop class (oneDNN, torch and MKL limited to AVX2, or to AVX2 with VNNI: `--cpu avx2`, see
bench.common.EMULATIONS), and writes one bench/results/<timestamp>.json and docs/performance.md with all.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.common import (
    BENCH,
    EMULATIONS,
    FULL,
    QUICK,
    ROOT,
    Context,
    Row,
    cpu_description,
    emulated,
    emulated_label,
    load_average,
    missing_flags,
    python_info,
)

ORDER = ["ingestion", "latency", "throughput", "loop_lag", "scale", "precision"]
# Only with --only: evidence for a proposed change (what_if), or the first run from a fresh clone (minutes of install).
EXTRA = ["what_if", "first_run"]
# What the AVX2 emulation re-runs: the benchmarks whose figures depend on the CPU's arithmetic.
CPU_BOUND = ["ingestion", "latency", "throughput", "precision", "first_run"]
USER_PRECISION = os.environ.get("QA_PRECISION")  # before the run pins the path it measures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (~2-3 min smoke run)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(ORDER + EXTRA)}")
    parser.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    parser.add_argument("--scale-1m", action="store_true", help="also insert 1,000,000 passages (~6+ min, ~3 GB)")
    parser.add_argument("--ndcg-full", action="store_true", help="precision: nDCG over the whole SciFact corpus (~5-10 min more)")
    parser.add_argument("--update", type=Path, metavar="RESULTS_JSON",
                        help="re-run the chosen benchmarks and merge them into this earlier result (doc from the merge)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (databases, logs)")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/performance.md")
    parser.add_argument("--cpu", default="native,avx2,avx2-vnni",
                        help="CPU classes: native (this CPU as it is), avx2 / avx2-vnni (limited to AVX2, or AVX2 with "
                             "VNNI, each in a child process)")
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)  # where a child writes its results
    args = parser.parse_args()
    classes = [c for c in args.cpu.split(",") if c]
    unknown = [c for c in classes if c != "native" and c not in EMULATIONS]
    if unknown:
        parser.error(f"--cpu: unknown class {', '.join(unknown)} (native, {', '.join(EMULATIONS)})")
    missing = {c: missing_flags(c) for c in classes if c in EMULATIONS and missing_flags(c)}
    for name, flags in missing.items():
        print(f"--cpu: this CPU cannot run as {name} (no {', '.join(sorted(flags))}): skipped", file=sys.stderr)
    if missing:
        classes = [c for c in classes if c not in missing]
        if not classes:
            parser.exit(2, "--cpu: no class left to run\n")
    if len(classes) == 1 and classes[0] in EMULATIONS and not emulated():
        # the limits must be set before torch starts: start again under them
        os.execve(sys.executable, [sys.executable, "-m", "bench", *sys.argv[1:]], {**os.environ, **EMULATIONS[classes[0]]})

    only = [n for n in args.only.split(",") if n]
    chosen = [n for n in ORDER + EXTRA if (n in only if only else n in ORDER) and n not in args.skip.split(",")]
    sizes = QUICK if args.quick else FULL
    if args.ndcg_full:
        sizes = dataclasses.replace(sizes, ndcg_full_corpus=True)
    work = Path(tempfile.mkdtemp(prefix="qa_bench_"))
    ctx = Context(sizes=sizes, work=work)
    started = time.time()
    meta = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)), "mode": sizes.name,
        "benchmarks": chosen, "commit": _git("rev-parse", "--short", "HEAD"),
        "dirty_files": _git("status", "--porcelain").count("\n"), "cpu": _cpu(), "cpu_detail": cpu_description(),
        **python_info(), "platform": platform.platform(), "load_before": load_average(), "work": str(work),
    }
    detail = meta["cpu_detail"]
    ctx.log(f"CPU: {detail['model']} x {detail['cores']}, class {detail['class']}, flags {' '.join(detail['flags'])}"
            f"{'; emulating ' + detail['emulating'] + ': ' + str(detail['limits']) if detail['emulating'] else ''}; "
            f"torch {detail['torch_cpu_capability']}")
    requested = chosen
    if "native" not in classes and not emulated():
        chosen = []
    ctx.log(f"bench {sizes.name}: {', '.join(chosen)}; load average {meta['load_before']}; work {work}")
    errors: dict[str, str] = {}
    timings: dict[str, float] = {}
    for name in chosen:
        t0 = time.time()
        first_row = len(ctx.rows)
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
        for row in ctx.rows[first_row:]:
            row.module = name
        timings[name] = time.time() - t0
        ctx.log(f"{name} took {timings[name]:.0f} s")
    meta.update(seconds=time.time() - started, benchmark_seconds=timings, load_after=load_average(), errors=errors)
    result = {"meta": meta, "sizes": vars(sizes), "rows": [r.as_dict() for r in ctx.rows], "details": ctx.details}
    again = [n for n in requested if n in CPU_BOUND]
    for emulation in [c for c in classes if c in EMULATIONS] if not emulated() and again else []:
        result = with_emulated(result, args, again, work, emulation)
    if args.update:
        result = merge(json.loads(args.update.read_text()), result, chosen)
    if args.out:  # a child run: the parent writes the results and the doc
        args.out.write_text(json.dumps(result, indent=2, default=str))
        shutil.rmtree(work, ignore_errors=True)
        return
    out_dir = BENCH / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(started))}-{sizes.name}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print()
    print(table([Row(**r) for r in result["rows"]]))
    print(f"\n{out.relative_to(ROOT)}; {meta['seconds'] / 60:.1f} min; load average before {meta['load_before']}, "
          f"after {meta['load_after']}")
    if not args.no_doc:
        from bench.report import write

        doc = write(result, out.relative_to(ROOT))
        print(f"wrote {doc.relative_to(ROOT)}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def with_emulated(result: dict, args: argparse.Namespace, benchmarks: list[str], work: Path, emulation: str) -> dict:
    """`result` with the rows and details of the same benchmarks run under an emulated CPU class (a child process)."""
    out = work / f"{emulation}.json"
    argv = [sys.executable, "-m", "bench", "--cpu", emulation, "--out", str(out), "--no-doc", "--only", ",".join(benchmarks)]
    argv += ["--quick"] if args.quick else []
    argv += ["--ndcg-full"] if args.ndcg_full else []
    limits = " ".join(f"{k}={v}" for k, v in EMULATIONS[emulation].items())
    print(f"\n== the same benchmarks emulating {emulation} ({limits}; ONNX Runtime cannot be limited)", flush=True)
    # The native run pinned its own path in QA_PRECISION (Context.encoder); the emulated run chooses
    # again, as such a laptop would, unless the person running the bench named a precision.
    env = {k: v for k, v in os.environ.items() if k != "QA_PRECISION" or USER_PRECISION is not None}
    proc = subprocess.run(argv, cwd=ROOT, env={**env, **EMULATIONS[emulation]})
    if proc.returncode != 0 or not out.exists():
        result["meta"].setdefault("errors", {})[emulation] = f"the emulated run exited with {proc.returncode}"
        return result
    child = json.loads(out.read_text())
    for row in child["rows"]:
        row["benchmark"] = emulated_label(emulation) + row["benchmark"]
    result["rows"] += child["rows"]
    result["details"][emulation] = child["details"]
    result["meta"][emulation] = {k: child["meta"][k] for k in ("cpu_detail", "seconds", "load_before", "load_after", "errors")}
    return result


# Row labels of results written before rows carried their module.
PREFIXES = {"ingestion": ("ingestion",), "latency": ("query latency", "cost of 3"), "throughput": ("throughput",),
            "loop_lag": ("event-loop lag", "loop_lag"), "scale": ("scale",),
            "onnx_backend": ("ONNX", "onnx_backend"), "precision": ("encode speed", "dense nDCG"),
            "what_if": ("what-if",)}
DETAIL_KEYS = {"onnx_backend": "onnx"}  # results written before precision replaced it


def merge(old: dict, new: dict, rerun: list[str]) -> dict:
    """`old` with the benchmarks in `rerun` replaced by `new`'s; the table keeps the benchmark order."""
    def module_of(row: dict) -> str:
        if row.get("module"):
            return row["module"]
        return next((m for m, prefixes in PREFIXES.items() if row["benchmark"].startswith(prefixes)), "")

    rows = [r for r in old["rows"] if module_of(r) not in rerun] + new["rows"]
    order = ORDER + EXTRA
    rows.sort(key=lambda r: order.index(module_of(r)) if module_of(r) in order else len(order))
    details = {k: v for k, v in old["details"].items()
               if k not in {DETAIL_KEYS.get(m, m) for m in rerun}}
    details.update(new["details"])
    meta = dict(old["meta"])
    meta.setdefault("updates", []).append({k: new["meta"][k] for k in ("started", "benchmarks", "seconds", "load_before",
                                                                       "load_after", "commit", "errors")})
    meta["errors"] = {**{k: v for k, v in old["meta"].get("errors", {}).items() if k not in rerun}, **new["meta"]["errors"]}
    return {"meta": meta, "sizes": old["sizes"], "rows": rows, "details": details}


def table(rows: list[Row]) -> str:
    lines = ["| benchmark | measured | baseline | ratio | goal | met? |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}"
        met = "report" if r.met is None else ("yes" if r.met else "**no**")
        cells = [str(c).replace("|", "\\|") for c in (r.benchmark, r.measured, r.baseline, ratio, r.goal, met)]
        lines.append("| " + " | ".join(cells) + " |")  # a "|delta|" in a cell would split it
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
