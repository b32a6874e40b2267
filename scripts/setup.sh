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
  if [ ! -x /usr/bin/chromium ]; then
    echo "== installing Chromium for the browser tests (apt)"
    if [ "$(id -u)" = 0 ]; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null
    else
      echo "   not root: install chromium yourself (sudo apt-get install chromium); browser tests will be skipped"
    fi
  fi
fi
