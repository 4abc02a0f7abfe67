"""Memory and regularisation options inside a real Trainer run: NEFTune, activation offloading with
gradient checkpointing, chunked cross-entropy (with evaluation, which gets no logits)."""

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
