"""Memory and regularisation options inside a real Trainer run: NEFTune, activation offloading with
gradient checkpointing, chunked cross-entropy (with evaluation, which gets no logits)."""

import pytest

from axo.train.sft import train
from conftest import read_log_history


def test_neftune_offloading_and_chunked_loss_train_and_evaluate(make_config):
    cfg = make_config(neftune_noise_alpha=5.0, gradient_checkpointing="offload", chunked_cross_entropy=True,
                      max_steps=12, learning_rate=1e-2, val_set_size=0.25, eval_steps=6)
    train(cfg)
    history = read_log_history(cfg.train.output_dir)
    losses = [e["loss"] for e in history if "loss" in e]
    evals = [e["eval_loss"] for e in history if "eval_loss" in e]
    assert losses[-1] < losses[0] and len(evals) == 2 and evals[-1] < evals[0]


def test_lora_with_gradient_checkpointing(make_config):
    cfg = make_config(adapter="lora", lora_target_linear=True, gradient_checkpointing=True, max_steps=8,
                      learning_rate=2e-2)
    train(cfg)
    losses = [e["loss"] for e in read_log_history(cfg.train.output_dir) if "loss" in e]
    assert losses[-1] < losses[0]


def test_generated_answers_are_scored_at_each_eval(make_config):
    """`do_causal_lm_eval`: at each eval the model answers every eval row; BLEU, chrF, TER and exact
    match of its answers are logged next to eval_loss, and `eval_table_size` rows are written."""
    import json
    from pathlib import Path

    cfg = make_config(max_steps=4, val_set_size=0.25, eval_steps=2, do_causal_lm_eval=True, eval_table_size=2,
                      eval_max_new_tokens=6, eval_causal_lm_metrics=["sacrebleu", "chrf", "ter", "exact_match",
                                                                     "perplexity"])
    train(cfg)
    history = read_log_history(cfg.train.output_dir)
    scored = [e for e in history if "eval_sacrebleu" in e]
    assert [e["step"] for e in scored] == [2, 4]
    for e in scored:
        assert 0 <= e["eval_sacrebleu"] <= 100 and 0 <= e["eval_chrf"] <= 100 and e["eval_ter"] >= 0
        assert 0 <= e["eval_exact_match"] <= 1 and e["eval_perplexity"] > 1
    table = Path(cfg.train.output_dir) / "eval_samples" / "step-4.jsonl"
    rows = [json.loads(line) for line in table.read_text().splitlines()]
    assert len(rows) == 2 and all(r["prompt"].endswith("### Response:\n") and r["expected"] for r in rows)


def test_scores_of_generated_answers():
    from axo.train.callbacks import score_answers

    answer = "the digits in order are 1 2 3 4 5"  # BLEU needs 4-grams
    same = [{"generated": answer, "expected": answer, "exact": True}] * 2
    other = [{"generated": "9 9", "expected": answer, "exact": False}, same[0]]
    metrics = ["sacrebleu", "chrf", "ter", "exact_match"]
    perfect = score_answers(same, metrics, None)
    assert perfect == pytest.approx({"sacrebleu": 100.0, "chrf": 100.0, "ter": 0.0, "exact_match": 1.0})
    half = score_answers(other, metrics, None)
    assert half["sacrebleu"] < 100 and half["chrf"] < 100 and half["ter"] > 0 and half["exact_match"] == 0.5
