#!/usr/bin/env bash
# bash examples/quickstart.sh   (or `make quickstart`, which sets up the environment first)
#
# Generates the digit task, scores the untrained model, trains it (~2-4 min on 2 CPU cores),
# scores it again on held-out rows, and asks it two questions.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

python examples/make_sort_data.py
rm -rf outputs/quickstart

echo; echo "== Untrained model, held-out split"
axo evaluate examples/quickstart.yml --exact-match

echo; echo "== Training"
axo train examples/quickstart.yml

echo; echo "== Trained model, held-out split"
axo evaluate examples/quickstart.yml --exact-match

for prompt in "Sort the digits: 7 3 9 1 4" "Reverse the digits: 5 0 2 8 6"; do
  echo; echo "== axo inference examples/quickstart.yml --prompt \"$prompt\""
  axo inference examples/quickstart.yml --prompt "$prompt" --max-new-tokens 20
done
