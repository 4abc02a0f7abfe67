#!/usr/bin/env bash
# bash examples/tiny.sh   (or `make tiny`, which sets up the environment first)
#
# Generates the digit task, scores the untrained model, trains it (~3 min on 2 CPU cores),
# scores it again on held-out rows, asks it two held-out questions, then exports it as GGUF and asks
# llama.cpp the same questions.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

python examples/make_sort_data.py
rm -rf outputs/tiny

echo; echo "== Untrained model, held-out split"
axo evaluate examples/tiny.yml --exact-match

echo; echo "== Training"
axo train examples/tiny.yml

echo; echo "== Trained model, held-out split"
axo evaluate examples/tiny.yml --exact-match

# Two held-out rows (their digit lists never appear in training), with the answers they expect.
python - <<'PY' > outputs/tiny/demo.tsv
import json
rows = [json.loads(line) for line in open("examples/data/sort_test.jsonl")]
for task in ("Sort", "Reverse"):
    row = next(r for r in rows if r["instruction"].startswith(task))
    print(row["instruction"], row["output"], sep="\t")
PY
while IFS=$'\t' read -r prompt expected; do
  echo; echo "== axo inference examples/tiny.yml --prompt \"$prompt\"   (expected: $expected)"
  axo inference examples/tiny.yml --prompt "$prompt" --max-new-tokens 20
done < outputs/tiny/demo.tsv

echo; echo "== axo export examples/tiny.yml --format gguf --quant q8_0   (for llama.cpp / Ollama, checked against the trained model)"
axo export examples/tiny.yml --format gguf --quant q8_0
while IFS=$'\t' read -r prompt expected; do
  echo; echo "== axo inference examples/tiny.yml --gguf outputs/tiny/gguf/model-q8_0.gguf --prompt \"$prompt\""
  axo inference examples/tiny.yml --gguf outputs/tiny/gguf/model-q8_0.gguf --prompt "$prompt" --max-new-tokens 20
done < outputs/tiny/demo.tsv

echo; echo "== The run report: outputs/tiny/report.html (open it in a browser)"
