#!/usr/bin/env bash
# The quickstart (examples/quickstart.yml: SmolLM2-135M-Instruct, LoRA, 30 steps) over several seeds:
# the base model's held-out scores once (greedy, so the same for every seed), then per seed the
# training time and the fine-tuned model's scores on the same 100 held-out rows.
#
#   make setup && bash bench/quickstart_seeds.sh [SEEDS...]      (default seeds: 0 1 2)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=.venv/bin:$PATH HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python examples/make_extract_data.py >/dev/null
SEEDS=${*:-0 1 2}
rm -rf outputs/qs-base
python examples/score_extract.py examples/quickstart.yml --label before --limit 100 --show 0 --output_dir outputs/qs-base \
  2>/dev/null | grep -E "exact format|general questions"
for seed in $SEEDS; do
  out=outputs/qs-seed$seed
  rm -rf "$out"
  axo train examples/quickstart.yml --seed "$seed" --output_dir "$out" >"$out.log" 2>&1
  echo "seed $seed: training $(python -c "import json; print(round(json.load(open('$out/run_summary.json'))['train_runtime']))") s"
  python examples/score_extract.py examples/quickstart.yml --label after --limit 100 --show 0 --seed "$seed" \
    --output_dir "$out" 2>/dev/null | grep -E "exact format|general questions"
done
