#!/bin/bash
# Second fusion grid: the WeightedRanker check (WEIGHTED=1) and fusion done in Python from the two lists.
set -u
cd /work/main
export RESEARCH_QA_APP=${RESEARCH_QA_APP:-/tmp/research/snap}
DB=$1; SET=$2; LABEL=$3; OUT=$4
grid=()
if [ "${WEIGHTED:-0}" = 1 ]; then
  grid+=("hybrid weighted:1.0 c50" "hybrid weighted:0.0 c50" "hybrid weightedraw:0.9 c50" "hybrid weightedraw:0.97 c50")
fi
grid+=("hybrid crrf:60 c50" "hybrid wrrf:60:0.6 c50" "hybrid wrrf:60:0.7 c50" "hybrid wrrf:20:0.7 c50"
       "hybrid cw:0.4 c50" "hybrid cw:0.5 c50" "hybrid cw:0.6 c50" "hybrid cw:0.7 c50")
.venv/bin/python research/retrieval/reval.py --db "$DB" --set "$SET" --label "$LABEL" --out "$OUT" --grid "${grid[@]}"
