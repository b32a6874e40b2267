#!/bin/bash
# BM25 analyzer / parameter variants on SciFact (chunk 200), vectors from the cache: sparse + hybrid grid.
set -u
cd /work/main
export RESEARCH_QA_APP=${RESEARCH_QA_APP:-/tmp/research/snap}
OUT=${1:-/tmp/research/grid.jsonl}
load() {  # NAME ARGS...
  name=$1; shift
  .venv/bin/python research/retrieval/rload.py /work/shared/eval/scifact/corpus.jsonl --db /tmp/research/an-$name.db \
    --cache minilm-an "$@" 2>/tmp/research/an-$name.err
  .venv/bin/python research/retrieval/reval.py --db /tmp/research/an-$name.db --set scifact --label "an-$name" \
    --out "$OUT" --grid "sparse c50" "hybrid rrf:60 c50" "hybrid rrf:20 c50" 2>>/tmp/research/an-$name.err
}
load standard --analyzer '{"tokenizer": "standard", "filter": ["lowercase"]}'
load k09b04 --bm25 0.9,0.4
load stem-nostop --analyzer '{"tokenizer": "standard", "filter": ["lowercase", {"type": "stemmer", "language": "english"}]}'
load k15b075 --bm25 1.5,0.75
