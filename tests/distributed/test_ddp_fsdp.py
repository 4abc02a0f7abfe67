"""Two CPU processes over gloo, started by `axo train --num-processes 2`: DDP equals one process
with the same global batch, FSDP2 really shards (every parameter a DTensor) and equals DDP, a
sharded checkpoint resumes to the same weights, and its shards merge into a plain model."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from axo.train.sft import train
from conftest import read_log_history

STEPS = {"max_steps": 4, "save_steps": 2, "logging_steps": 1, "learning_rate": 1e-2}
FSDP = {"fsdp_version": 2, "fsdp_config": {"state_dict_type": "SHARDED_STATE_DICT", "cpu_ram_efficient_loading": True,
                                           "transformer_layer_cls_to_wrap": "LlamaDecoderLayer"}}


def launch(cfg_keys: dict, folder: Path, make_config, launcher="torchrun", extra=()) -> subprocess.CompletedProcess:
    """`axo train cfg.yml --num-processes 2` in a subprocess; fails the test if training fails."""
    cfg = make_config(output_dir=str(folder), micro_batch_size=4, **STEPS, **cfg_keys)
    path = folder.parent / f"{folder.name}.yml"
    path.write_text(yaml.safe_dump({k: v for k, v in cfg.to_flat().items() if v is not None}))
    run = subprocess.run([sys.executable, "-m", "axo", "train", str(path), "--num-processes", "2",
                          "--launcher", launcher, *extra],
                         capture_output=True, text=True, timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    return run


def weights(folder: Path) -> dict[str, torch.Tensor]:
    """As plain transformers loads them (FSDP's full save also writes the tied head's copy)."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder).state_dict()


def assert_same_weights(a: dict, b: dict, tol: float):
    assert a.keys() == b.keys()
    worst = max(((a[k] - b[k]).abs().max() / b[k].abs().max().clamp_min(1e-8)).item() for k in a)
    assert worst < tol, worst


def losses(folder: Path) -> list[float]:
    return [e["loss"] for e in read_log_history(folder) if "loss" in e]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("distributed")


@pytest.fixture
def ddp_run(runs, make_config):
    folder = runs / "ddp"
    if not folder.exists():
        run = launch({}, folder, make_config, launcher="accelerate")
        assert "accelerate" in run.stderr.split("launching: ")[1].split()[0]
    return folder


@pytest.fixture
def fsdp_run(runs, make_config):
    folder = runs / "fsdp"
    if not folder.exists():
        run = launch(FSDP, folder, make_config)
        (runs / "fsdp.log").write_text(run.stdout + run.stderr)
    return folder


def test_ddp_equals_one_process_with_the_same_global_batch(ddp_run, make_config, tmp_path):
    single = make_config(output_dir=str(tmp_path / "single"), micro_batch_size=8, **STEPS)
    train(single)
    single_dir = Path(single.train.output_dir)
    assert losses(ddp_run) == pytest.approx(losses(single_dir), rel=1e-4)
    assert_same_weights(weights(ddp_run), weights(single_dir), 1e-4)
    summary = json.loads((ddp_run / "run_summary.json").read_text())
    assert "fsdp_sharded_parameters" not in summary


def test_fsdp2_really_shards_and_equals_ddp(fsdp_run, ddp_run, runs):
    # cpu_ram_efficient_loading: the engine exists before the model loads, so rank 1 reads no weights
    # and receives rank 0's; the result still equals DDP's
    log = (runs / "fsdp.log").read_text()
    assert "Local rank 1 read no weights" in log and "Local rank 0 read no weights" not in log
    summary = json.loads((fsdp_run / "run_summary.json").read_text())
    assert summary["fsdp_sharded_parameters"] == summary["parameters"] > 0  # every parameter a DTensor
    assert summary["final_state_dict_type"] == "FULL_STATE_DICT"
    assert (fsdp_run / "checkpoint-2" / "pytorch_model_fsdp_0").is_dir()  # checkpoints are sharded
    assert losses(fsdp_run) == pytest.approx(losses(ddp_run), rel=1e-4)
    assert_same_weights(weights(fsdp_run), weights(ddp_run), 1e-4)


def test_fsdp2_resumes_from_its_sharded_checkpoint(fsdp_run, make_config, runs):
    folder = runs / "fsdp-resumed"
    shutil.copytree(fsdp_run / "checkpoint-2", folder / "checkpoint-2")
    run = launch({**FSDP, "auto_resume_from_checkpoints": True}, folder, make_config)
    assert "Resuming from" in run.stdout + run.stderr
    assert_same_weights(weights(folder), weights(fsdp_run), 1e-6)


def test_sharded_checkpoint_merges_into_a_plain_model(fsdp_run, runs):
    from transformers import AutoModelForCausalLM

    path = runs / "fsdp.yml"
    run = subprocess.run([sys.executable, "-m", "axo", "merge-sharded-fsdp-weights", str(path),
                          "--checkpoint", str(fsdp_run / "checkpoint-4")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    merged = AutoModelForCausalLM.from_pretrained(fsdp_run / "merged")
    final = AutoModelForCausalLM.from_pretrained(fsdp_run)
    for (name, a), b in zip(merged.state_dict().items(), final.state_dict().values()):
        assert torch.equal(a, b), name


def test_qat_under_fsdp2_trains_as_one_process(make_config, runs, tmp_path):
    """Fake-quantized layers shard like plain ones (their class is swapped in place, before FSDP
    wraps the model) and save as a plain model. The first step, from the same weights, has one
    process's QAT loss exactly (and not the loss without QAT); after it, reductions summed in
    another order move a few weights across a rounding boundary, so later steps agree to 0.1%."""
    qat = {"qat": {"weight_dtype": "int8", "group_size": 16}}
    folder = runs / "fsdp-qat"
    run = launch({**FSDP, **qat}, folder, make_config)
    assert "QAT: fake-quantizing 14 layers to int8 weights" in run.stdout + run.stderr
    reference = {}
    for name, keys in {"qat": qat, "plain": {}}.items():
        single = make_config(output_dir=str(tmp_path / name), micro_batch_size=8, **STEPS, **keys)
        train(single)
        reference[name] = Path(single.train.output_dir)
    sharded, alone = losses(folder), losses(reference["qat"])
    assert sharded[0] == pytest.approx(alone[0], rel=1e-6)
    assert sharded[0] != pytest.approx(losses(reference["plain"])[0], rel=1e-4)
    assert sharded == pytest.approx(alone, rel=1e-3)
    assert_same_weights(weights(folder), weights(reference["qat"]), 1e-2)


def test_sigterm_to_the_launching_process_saves_on_every_rank(make_config, runs):
    """SIGTERM sent to `axo train --num-processes 2` alone (as Kubernetes sends it) reaches both
    training processes, which stop after the same step with one whole checkpoint."""
    import signal

    folder = runs / "sigterm"
    cfg = make_config(output_dir=str(folder), micro_batch_size=4, max_steps=40, save_steps=100, logging_steps=1)
    path = runs / "sigterm.yml"
    path.write_text(yaml.safe_dump({k: v for k, v in cfg.to_flat().items() if v is not None}))
    process = subprocess.Popen([sys.executable, "-m", "axo", "train", str(path), "--num-processes", "2",
                                "--launcher", "torchrun"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    output, sent = [], False
    for line in process.stdout:
        output.append(line)
        if not sent and "step 3/40" in line:
            process.send_signal(signal.SIGTERM)
            sent = True
    status = process.wait(timeout=300)
    text = "".join(output)
    assert sent and status == 128 + signal.SIGTERM, text[-3000:]
    assert text.count("SIGTERM received: finishing this step") == 2, text[-3000:]
    [checkpoint] = folder.glob("checkpoint-*")
    assert (checkpoint / "axo_checkpoint.json").exists() and int(checkpoint.name.split("-")[1]) < 40
    assert "Traceback" not in text, text[-3000:]
