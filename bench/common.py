"""Shared helpers: sizes, corpora, subprocesses (qa-app load / serve), statistics, /proc readings."""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PY = ROOT / ".venv" / "bin" / "python"
QA_APP = ROOT / ".venv" / "bin" / "qa-app"
SCIFACT = Path(os.environ.get("QA_BENCH_SCIFACT", ROOT.parent / "shared" / "eval" / "scifact"))
PYDOCS = ROOT / "data" / "python-docs"
PYDOCS_EVAL = ROOT / "data" / "eval" / "python-docs"
PYDOCS_HTML = Path("/usr/share/doc/python3.11/html")  # Debian's python3.11-doc: the Python-docs dev set's pages
VENVS = BENCH / ".venvs"
LC_PY = VENVS / "lc" / "bin" / "python"
CACHE = BENCH / "results" / "cache"
COLLECTION = "scifact"
# The common laptops on a machine with AMX or AVX-512: oneDNN (torch's bf16 and packed layers, and
# OpenVINO's kernels), torch's vectorised ATen kernels and MKL (fp32 GEMM) limited to AVX2, or to AVX2
# with VNNI (AVX-VNNI: Intel laptops since Alder Lake). ONNX Runtime's MLAS cannot be limited: it picks
# kernels from cpuid alone, with no setting or variable (see docs/performance.md).
EMULATIONS = {
    "avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "avx2-vnni": {"ONEDNN_MAX_CPU_ISA": "AVX2_VNNI", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}


# The CPU flags each emulated class needs: a cap names the instructions oneDNN may use, it adds none.
EMULATION_FLAGS = {"avx2": {"avx2"}, "avx2-vnni": {"avx2", "avx_vnni"}}


def missing_flags(name: str) -> set[str]:
    """The flags this CPU lacks to run as the emulated class `name` (none: it can)."""
    from qa_app.embedding.cpu import cpu_info

    return EMULATION_FLAGS[name] - cpu_info().flags


def emulated() -> str:
    """The CPU class this process emulates (`python -m bench --cpu avx2`), or "" on the CPU as it is."""
    return next((name for name, limits in EMULATIONS.items()
                 if all(os.environ.get(k) == v for k, v in limits.items())), "")


def emulated_label(name: str) -> str:
    """How the table marks a row of an emulated class: [AVX2 emulated], [AVX2-VNNI emulated]."""
    return f"[{name.upper()} emulated] "


def cpu_description() -> dict[str, Any]:
    """The CPU model, its class, the flags that matter to the model, and what limits the libraries here."""
    from qa_app.embedding.cpu import cpu_info

    cpu = cpu_info()
    import torch

    return {"model": cpu.model, "cores": os.cpu_count(), "class": cpu.cpu_class, "flags": cpu.shown_flags(),
            "emulating": emulated(), "limits": {k: os.environ[k] for k in EMULATIONS["avx2"] if k in os.environ},
            "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}


@dataclass(frozen=True)
class Sizes:
    """How much work each benchmark does; `quick` is a smoke run, `full` the real one."""

    name: str
    scifact_docs: int          # SciFact slice for the ingestion ratio and the served collection
    pydocs_pages: int          # Python-docs .rst pages for the second ingestion ratio
    ingest_reps: int           # floor/load alternations (floor, load, floor, ... ends with a floor)
    latency_rounds: int        # rounds of one block per variant (HTTP, floor, floor with 2 searches, QAService.ask)
    latency_per_round: int     # consecutive requests per variant per round (a block)
    tput_seconds: float        # measuring window per subject per round at concurrency 16
    tput_rounds: int
    lag_load_docs: int         # SciFact docs loaded in-process while the loop is probed
    lag_seconds: float         # serving window at concurrency 16 while probed
    scale_sizes: tuple[int, ...]
    scale_queries: int
    speed_passages: int        # passages (of the ingestion slice) for the encoder precision speed ratios
    speed_rounds: int          # rounds of the paths' encode-rate comparison (order rotated each round)
    ndcg_full_corpus: bool     # nDCG on the whole 5,183-doc corpus (else: judged docs + a sample)
    ndcg_sample_docs: int      # sample size when not on the whole corpus
    pydocs_eval_others: int    # Python-docs dev: pages besides the judged ones, spread over the docs


QUICK = Sizes("quick", scifact_docs=150, pydocs_pages=3, ingest_reps=1, latency_rounds=2, latency_per_round=15,
              tput_seconds=4, tput_rounds=1, lag_load_docs=60, lag_seconds=4, scale_sizes=(2_000, 10_000),
              scale_queries=30, speed_passages=120, speed_rounds=2, ndcg_full_corpus=False, ndcg_sample_docs=300,
              pydocs_eval_others=10)
FULL = Sizes("full", scifact_docs=400, pydocs_pages=10, ingest_reps=3, latency_rounds=12, latency_per_round=20,
             tput_seconds=6, tput_rounds=5, lag_load_docs=300, lag_seconds=10, scale_sizes=(10_000, 100_000),
             scale_queries=100, speed_passages=400, speed_rounds=3, ndcg_full_corpus=False, ndcg_sample_docs=1000,
             pydocs_eval_others=40)


@dataclass
class Row:
    """One line of the summary table."""

    benchmark: str
    measured: str
    baseline: str
    ratio: float | None
    goal: str
    met: bool | None  # None: report only
    note: str = ""
    module: str = ""  # the bench module that measured it

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class Context:
    sizes: Sizes
    work: Path
    rows: list[Row] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    _encoder: Any = None
    _served_db: Path | None = None
    paths: dict[str, Any] = field(default_factory=dict)  # DenseEncoder by precision, for the precision benchmark

    def log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    @property
    def encoder(self) -> Any:
        """The app's DenseEncoder, loaded once in this process (floors, in-process baselines)."""
        if self._encoder is None:
            from qa_app.embedding.encoder import DenseEncoder
            from qa_app.settings import load_settings

            settings = load_settings(os.environ)
            self._encoder = DenseEncoder.load(settings.model, settings.precision)
            # Every process of the run (loads, floors, servers) runs this path: their own self-tests on a
            # busy machine could choose differently, and each ratio is of one path against itself.
            os.environ.setdefault("QA_PRECISION", self._encoder.precision)
            self.log(f"embedding path {self._encoder.path_name} ({self._encoder.selection.reason}), pinned for the run")
        return self._encoder

    def scifact_slice(self) -> Path:
        path = self.work / f"scifact-{self.sizes.scifact_docs}.jsonl"
        if not path.exists():
            write_slice(path, self.sizes.scifact_docs)
        return path

    def served_db(self) -> Path:
        """The SciFact slice loaded by `qa-app load` (the ingestion benchmark's, or loaded now)."""
        if self._served_db is None or not self._served_db.exists():
            db = self.work / "served" / "scifact.db"
            if not db.exists():
                self.log(f"loading {self.scifact_slice().name} for the serving benchmarks")
                run_load([self.scifact_slice()], db)
            self._served_db = db
        return self._served_db

    def db_copy(self, name: str) -> Path:
        """A copy of the served .db (Milvus Lite opens a file from one process only)."""
        source = self.served_db()
        target = self.work / "copies" / name / source.name
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        copy_db(source, target)
        return target


# Model calls of the floors run on one worker thread, as the app's own calls do (asyncio.to_thread):
# on this machine, encode() on the main thread of a process measured slower, and much more erratic
# under load, than the same call on a worker thread.
_FLOOR_THREAD = ThreadPoolExecutor(1, thread_name_prefix="floor")


def on_worker(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run fn on the floors' worker thread and wait for it."""
    return _FLOOR_THREAD.submit(fn, *args, **kwargs).result()


def write_slice(path: Path, docs: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with (SCIFACT / "corpus.jsonl").open() as src, path.open("w") as out:
        for i, line in enumerate(src):
            if i >= docs:
                break
            out.write(line)


def pydocs_sample(work: Path, pages: int) -> Path:
    """Every n-th .rst page of data/python-docs, copied into a folder (a deterministic spread of pages)."""
    files = sorted(PYDOCS.rglob("*.rst"))
    step = max(1, len(files) // pages)
    chosen = files[::step][:pages]
    folder = work / f"pydocs-{pages}"
    if not folder.exists():
        for f in chosen:
            target = folder / f.relative_to(PYDOCS)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, target)
    return folder


def copy_db(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


# -- subprocesses ------------------------------------------------------------------------------------

def app_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONWARNINGS": "ignore"})
    env.update(extra)
    return env


def run_load(paths: list[Path], db: Path, collection: str = COLLECTION, precision: str | None = None) -> dict[str, Any]:
    """`qa-app load --quiet --json` in a subprocess; its report plus the command's wall time."""
    db.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    extra = ["--precision", precision] if precision else []
    proc = subprocess.run([str(QA_APP), "load", *map(str, paths), "--milvus-uri", str(db), "--collection",
                           collection, "--quiet", "--json", *extra], capture_output=True, text=True, env=app_env())
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"qa-app load failed: {proc.stderr[-2000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    report["wall_seconds"] = wall
    return report


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server subprocess on a free port, ready once `ready_path` answers 200."""

    def __init__(self, argv: list[str], port: int, *, ready_path: str = "/healthz", env: dict[str, str] | None = None,
                 log: Path | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        if log:
            log.parent.mkdir(parents=True, exist_ok=True)
        out = log.open("w") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(argv, env=env or app_env(), stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.ready_path = ready_path

    def wait_ready(self, timeout: float = 180.0) -> float:
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if self.proc.poll() is not None:
                tail = self.log.read_text()[-3000:] if self.log and self.log.exists() else ""
                raise RuntimeError(f"server exited with {self.proc.returncode}: {tail}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"server on {self.url} not ready after {timeout} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def qa_serve(db: Path, log: Path) -> Server:
    port = free_port()
    return Server([str(QA_APP), "serve", "--milvus-uri", str(db), "--collection", COLLECTION, "--port", str(port)],
                  port, log=log)


# -- /proc ----------------------------------------------------------------------------------------------

def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def milvus_server_pid(parent: int) -> int | None:
    """The milvus-lite server process started (directly or not) by `parent`."""
    for pid in descendants(parent):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if cmd.endswith(b"milvus_lite/lib/milvus"):
            return pid
    return None


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- statistics ---------------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation."""
    if not values:
        return float("nan")
    data = sorted(values)
    k = (len(data) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def queries(n: int | None = None, seed: int = 7) -> list[str]:
    """SciFact dev questions (the served collection is SciFact), shuffled deterministically."""
    texts = [json.loads(line)["text"] for line in (SCIFACT / "queries.jsonl").open()]
    random.Random(seed).shuffle(texts)
    return texts if n is None else [texts[i % len(texts)] for i in range(n)]


class RawHTTP:
    """One kept-alive HTTP/1.1 connection spoken to directly (asyncio streams). The load generator
    shares the 2 cores with the server under test: httpx cost ~3 ms of CPU per request, which every
    server measured would lose alike and which no server spends."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post_json(self, path: str, payload: dict[str, Any]) -> tuple[int, bytes]:
        body = json.dumps(payload).encode()
        request = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        for attempt in range(2):
            reused = self._streams is not None
            try:
                if self._streams is None:
                    self._streams = await asyncio.open_connection(self.host, self.port)
                reader, writer = self._streams
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                length = next(int(line.split(":", 1)[1]) for line in lines[1:]
                              if line.lower().startswith("content-length:"))
                return int(lines[0].split(" ", 2)[1]), await reader.readexactly(length)
            except (OSError, ValueError, StopIteration, asyncio.IncompleteReadError):
                self.close()  # the next request opens a fresh connection
                # A kept-alive connection idle past the server's keep-alive timeout (uvicorn: 5 s) is closed
                # by the server: send again once on a new one, as a browser or httpx would.
                if not (reused and attempt == 0):
                    raise ConnectionError(f"bad or no response from {self.host}:{self.port}") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def closed_loop(url: str, questions: list[str], concurrency: int, seconds: float,
                      payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """`concurrency` workers each sending one POST after another for `seconds`; rps and latencies."""
    parts = urlsplit(url)
    latencies: list[float] = []
    errors = 0
    counter = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors, counter
        client = RawHTTP(url)
        try:
            while time.perf_counter() < deadline:
                q = questions[counter % len(questions)]
                counter += 1
                t0 = time.perf_counter()
                try:
                    status, _ = await client.post_json(parts.path, {"question": q, "top_k": 5, **(payload or {})})
                    ok = status == 200
                except ConnectionError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1
        finally:
            client.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"requests": len(latencies), "errors": errors, "seconds": elapsed, "rps": len(latencies) / elapsed,
            "p50_ms": pct(latencies, 50) * 1000, "p95_ms": pct(latencies, 95) * 1000}


def fmt(value: float, unit: str = "", digits: int = 1) -> str:
    return f"{value:,.{digits}f}{(' ' + unit) if unit else ''}"


def python_info() -> dict[str, Any]:
    return {"python": sys.version.split()[0], "nproc": os.cpu_count()}
