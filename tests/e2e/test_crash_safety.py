"""Runs that go wrong end as failures, never as saved results: divergence stops training before
anything non-finite is written."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from axo.errors import AxoError
from axo.train.sft import train
from conftest import Losses


def test_divergence_stops_the_run_and_writes_no_nan_weights(make_config):
    cfg = make_config(learning_rate=1e3, max_steps=20, save_steps=1, max_grad_norm=None)
    losses = Losses()
    with pytest.raises(AxoError, match=r"training failed: the (loss|grad norm|weights) became (nan|inf|non-finite)"):
        train(cfg, callbacks=[losses])
    out = Path(cfg.train.output_dir)
    assert len(losses.seen) < 20  # stopped early
    assert not (out / "model.safetensors").exists()  # no final model
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["status"] == "failed" and "step" in summary["reason"]
    checkpoints = list(out.glob("checkpoint-*"))
    assert checkpoints and len(checkpoints) < len(losses.seen)  # the diverged step's checkpoint was not written
    for checkpoint in checkpoints:  # and every one on disk is a good one
        weights = load_file(checkpoint / "model.safetensors")
        assert all(torch.isfinite(w).all() for w in weights.values()), checkpoint
