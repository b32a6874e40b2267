#!/bin/bash
# Usage: run_grid.sh DB SET LABEL OUT  -- the fusion grid of the report on one loaded collection.
set -u
cd /work/main
export RESEARCH_QA_APP=${RESEARCH_QA_APP:-/tmp/research/snap}  # qa_app as of 9ab085a (schema 1)
DB=$1; SET=$2; LABEL=$3; OUT=$4
.venv/bin/python research/retrieval/reval.py --db "$DB" --set "$SET" --label "$LABEL" --out "$OUT" --grid \
  "dense c50" "sparse c50" \
  "hybrid rrf:60 c50" "hybrid rrf:60 c20" "hybrid rrf:60 c100" "hybrid rrf:60 c200" \
  "hybrid rrf:10 c50" "hybrid rrf:20 c50" "hybrid rrf:40 c50" "hybrid rrf:100 c50" \
  "hybrid rrf:20 c100" "hybrid rrf:100 c100" \
  "hybrid weighted:0.3 c50" "hybrid weighted:0.4 c50" "hybrid weighted:0.5 c50" "hybrid weighted:0.6 c50" "hybrid weighted:0.7 c50" \
  "hybrid weighted:0.5 c100" "hybrid weighted:0.6 c100"
