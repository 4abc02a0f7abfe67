"""Training with packing follows the same curve as without it, and gradient accumulation does not
change the result: token-weighted loss makes both exact up to float rounding."""

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from axo.data.packing import pack_bins
from axo.data.prepare import prepare
from axo.model.tokenizer import load_tokenizer
from axo.train.sft import train
from conftest import EXAMPLES, read_log_history


@pytest.fixture
def rows16(tmp_path):
    path = tmp_path / "rows16.jsonl"
    lines = (EXAMPLES / "data" / "sort_train.jsonl").read_text().splitlines()
    path.write_text("\n".join(lines[:16]) + "\n")
    return path


def run(make_config, tmp_path, name, **keys):
    cfg = make_config(output_dir=str(tmp_path / name), max_steps=None, num_epochs=4, logging_steps=1,
                      lr_scheduler="constant", learning_rate=1e-2, **keys)
    summary = train(cfg)
    losses = [e["loss"] for e in read_log_history(cfg.train.output_dir) if "loss" in e]
    weights = load_file(Path(cfg.train.output_dir) / "model.safetensors")
    return losses, weights, summary


def assert_same_weights(a, b, atol=2e-5):
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=atol, rtol=0, msg=name)


def test_packed_run_follows_the_unpacked_loss_curve(make_config, tmp_path, rows16):
    """Each optimizer step sees the whole dataset in both runs, so both see the same tokens."""
    datasets = [{"path": str(rows16), "type": "alpaca"}]
    cfg = make_config(datasets=datasets, sample_packing=True, sequence_len=128)
    lengths = np.array(prepare(cfg, load_tokenizer(cfg)).train["length"])
    n_packs = len(pack_bins(lengths, 128))
    assert n_packs < 16

    plain, w_plain, _ = run(make_config, tmp_path, "plain", datasets=datasets, micro_batch_size=4,
                            gradient_accumulation_steps=4)
    packed, w_packed, summary = run(make_config, tmp_path, "packed", datasets=datasets, sample_packing=True,
                                    micro_batch_size=1, gradient_accumulation_steps=n_packs)
    assert len(plain) == len(packed) == 4
    assert plain[-1] < plain[0]
    np.testing.assert_allclose(packed, plain, rtol=1e-4)
    assert_same_weights(w_packed, w_plain)
    assert 0.5 < summary["packing_efficiency"] <= 1.0


def test_gradient_accumulation_invariance(make_config, tmp_path, rows16):
    datasets = [{"path": str(rows16), "type": "alpaca"}]
    """micro_batch_size 1 x 16 accumulation steps == 16 x 1, rows of uneven length (51-59 tokens)."""
    one_by_16, w_a, _ = run(make_config, tmp_path, "a", datasets=datasets, micro_batch_size=1,
                            gradient_accumulation_steps=16)
    sixteen_by_1, w_b, _ = run(make_config, tmp_path, "b", datasets=datasets, micro_batch_size=16,
                               gradient_accumulation_steps=1)
    assert one_by_16[-1] < one_by_16[0]
    np.testing.assert_allclose(one_by_16, sixteen_by_1, rtol=1e-4)
    assert_same_weights(w_a, w_b)


def test_packed_training_with_eval_and_padding_to_sequence_len(make_config, alpaca_file):
    cfg = make_config(sample_packing=True, pad_to_sequence_len=True, val_set_size=0.25, eval_steps=5,
                      max_steps=10, sequence_len=256)
    summary = train(cfg)
    assert summary["packing_efficiency"] > 0.8 and summary["eval_packing_efficiency"] > 0.5
    history = read_log_history(cfg.train.output_dir)
    losses = [e["loss"] for e in history if "loss" in e]
    assert losses[-1] < losses[0]
    assert any("eval_loss" in e for e in history)
