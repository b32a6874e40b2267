set -e
# Loads the whole SciFact corpus in bf16 and in fp32 and evaluates both (about 15 min on 2 cores).
mkdir -p "${OUT:-/tmp/qa-precision}"
cd "$(dirname "$0")/../.."
for p in bf16 fp32; do
  start=$(date +%s)
  .venv/bin/qa-app load ../shared/eval/scifact/corpus.jsonl --milvus-uri ${OUT:-/tmp/qa-precision}/sf-$p.db --collection scifact --precision $p --quiet --json > ${OUT:-/tmp/qa-precision}/load-$p.json
  echo "$p load $(( $(date +%s) - start )) s"
  .venv/bin/qa-app eval --queries ../shared/eval/scifact/queries.jsonl --qrels ../shared/eval/scifact/qrels/dev.tsv --mode all --milvus-uri ${OUT:-/tmp/qa-precision}/sf-$p.db --collection scifact --precision $p --quiet --json > ${OUT:-/tmp/qa-precision}/eval-$p.json
  echo "$p eval done"
done
# mixed: fp32 passages, bf16 questions
.venv/bin/qa-app eval --queries ../shared/eval/scifact/queries.jsonl --qrels ../shared/eval/scifact/qrels/dev.tsv --mode all --milvus-uri ${OUT:-/tmp/qa-precision}/sf-fp32.db --collection scifact --precision bf16 --quiet --json > ${OUT:-/tmp/qa-precision}/eval-mixed.json
echo mixed done
