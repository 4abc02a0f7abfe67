#!/usr/bin/env bash
# The student of examples/kd.yml (a quarter of the tiny model, random init) trained twice on
# the same rows and steps: distilled from the tiny model (kd.yml), and by plain SFT (kd.yml
# without its kd_ keys and teacher). Held-out exact match of each by lm-eval's local task.
#   make tiny && bash bench/distill_vs_sft.sh [SEEDS...]      (default seeds: 0 1 2)
set -euo pipefail
cd "$(dirname "$0")/.."
AXO=${AXO:-.venv/bin/axo}
work=$(mktemp -d)
sed -e '/^kd_/d; /^teacher_model/d' examples/kd.yml > "$work/sft.yml"
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(0 1 2)
printf "%-6s %-5s %-10s %s\n" run seed seconds exact_match
for seed in "${seeds[@]}"; do
  for run in kd sft; do
    config=$([ "$run" = kd ] && echo examples/kd.yml || echo "$work/sft.yml")
    out="$work/$run-$seed"
    start=$(date +%s)
    "$AXO" train "$config" --seed "$seed" --output_dir "$out" > "$out.log" 2>&1
    seconds=$(( $(date +%s) - start ))
    score=$("$AXO" lm-eval "$config" --output_dir "$out" --tasks examples/lm_eval/sort_digits.yaml 2>/dev/null \
            | awk '/exact_match/ {print $3}')
    printf "%-6s %-5s %-10s %s\n" "$run" "$seed" "$seconds" "$score"
  done
done
