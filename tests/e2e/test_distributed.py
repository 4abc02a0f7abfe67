"""Two CPU processes under torchrun: real DDP (gloo), local rank 0 tokenizes the data and rank 1
reads its cache, packs are split between the ranks, and both take the same number of steps (a rank
with more steps would hang the other in its next all-reduce). Nothing here depends on which rank
gets where first: rank 1 may wait for the cache or find it done (tests/unit/test_prepare.py covers
the waiting itself)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import read_log_history


def test_torchrun_two_processes_with_packing(make_config, tmp_path):
    cfg = make_config(sample_packing=True, sequence_len=256, micro_batch_size=1, max_steps=4)
    path = tmp_path / "cfg.yml"
    path.write_text(yaml.safe_dump(cfg.to_flat()))
    torchrun = Path(sys.executable).parent / "torchrun"
    # --standalone: a free rendezvous port, so parallel runs (two CI jobs) cannot collide
    run = subprocess.run([str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "axo", "train", str(path)],
                         capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    output = run.stdout + run.stderr
    assert output.count("Local rank 0 tokenized the data into") == 1
    assert output.count("Local rank 1 read the tokenized data from") == 1
    assert "Local rank 1 tokenized" not in output
    assert output.count("step 4/4 | loss") == 1  # only the main process logs
    summary = json.loads((Path(cfg.train.output_dir) / "run_summary.json").read_text())
    assert summary["packing_efficiency"] > 0.5
    per_rank = -(-packs_built(output) // 2)
    batches = -(-per_rank // summary["packs_per_sequence"])  # a micro-batch holds that many (shorter) packs
    last = read_log_history(cfg.train.output_dir)[-1]
    assert abs(last["epoch"] - 4 / batches) < 1e-3  # each rank walks half of the packs


def packs_built(output: str) -> int:
    line = next(l for l in output.splitlines() if "Packed train:" in l)
    return int(line.split(" rows into ")[1].split()[0])
