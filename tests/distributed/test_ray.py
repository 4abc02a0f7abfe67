"""`use_ray: true` on a local Ray cluster: 2 Ray Train workers (CPU, gloo) train the model, and the
result equals one process with the same global batch, as DDP's does."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from axo.train.sft import train
from test_ddp_fsdp import STEPS, assert_same_weights, losses, weights

pytest.importorskip("ray.train")


def test_ray_train_two_workers_equal_one_process(make_config, tmp_path):
    cfg = make_config(output_dir=str(tmp_path / "ray"), micro_batch_size=4, use_ray=True, ray_num_workers=2,
                      resources_per_worker={"CPU": 1}, **STEPS)
    path = tmp_path / "ray.yml"
    path.write_text(yaml.safe_dump({k: v for k, v in cfg.to_flat().items() if v is not None}))
    run = subprocess.run([sys.executable, "-m", "axo", "train", str(path)], capture_output=True, text=True,
                         timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1", "RAY_ADDRESS": "local"},
                         cwd=tmp_path)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    assert "Ray Train: 2 workers" in run.stdout + run.stderr

    single = make_config(output_dir=str(tmp_path / "single"), micro_batch_size=8, **STEPS)
    train(single)
    out = Path(cfg.train.output_dir)
    assert losses(out) == pytest.approx(losses(Path(single.train.output_dir)), rel=1e-4)
    assert_same_weights(weights(out), weights(Path(single.train.output_dir)), 1e-4)
