"""Runs that go wrong end as failures, never as saved results, and leave something to resume:
divergence stops training before anything non-finite is written; a damaged newest checkpoint is
skipped on auto-resume; a full disk says so; SIGTERM saves, and resuming equals not stopping."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from axo.errors import AxoError
from axo.train.sft import train
from conftest import Losses


def test_divergence_stops_the_run_and_writes_no_nan_weights(make_config, tmp_path):
    import math
    import subprocess
    import sys

    import yaml

    cfg = make_config(learning_rate=1e3, max_steps=20, save_steps=1, max_grad_norm=None)
    losses = Losses()
    with pytest.raises(AxoError, match=r"training failed: the (loss|grad norm|weights) became (nan|inf|non-finite)"):
        train(cfg, callbacks=[losses])
    # the command exits non-zero with the reason, and its log shows the non-finite value as such
    path = tmp_path / "diverge.yml"
    flat = {k: v for k, v in cfg.to_flat().items() if v is not None}
    path.write_text(yaml.safe_dump({**flat, "output_dir": str(tmp_path / "cli")}))
    run = subprocess.run([sys.executable, "-m", "axo", "train", str(path)], capture_output=True, text=True)
    assert run.returncode == 2 and "error: training failed" in run.stderr and "Traceback" not in run.stderr
    assert "grad_norm nan" in run.stdout + run.stderr or "loss nan" in run.stdout + run.stderr
    assert not any(loss == 0.0 for loss in losses.seen) and all(math.isfinite(x) for x in losses.seen[:1])
    out = Path(cfg.train.output_dir)
    assert len(losses.seen) < 20  # stopped early
    assert not (out / "model.safetensors").exists()  # no final model
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["status"] == "failed" and "step" in summary["reason"]
    assert "<td>failed</td>" in (out / "report.html").read_text()  # the report shows the run as failed
    checkpoints = list(out.glob("checkpoint-*"))
    assert checkpoints and len(checkpoints) < len(losses.seen)  # the diverged step's checkpoint was not written
    for checkpoint in checkpoints:  # and every one on disk is a good one
        weights = load_file(checkpoint / "model.safetensors")
        assert all(torch.isfinite(w).all() for w in weights.values()), checkpoint


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A run of 6 steps with checkpoints at 2, 4 and 6, trained once for the damage tests."""
    return tmp_path_factory.mktemp("finished")


def damaged_run(make_config, tmp_path, finished, damage):
    """checkpoint-2 and -4 of a run copied, -4 damaged, then resumed to step 6: the weights equal the
    uninterrupted run's, through checkpoint-2."""
    full = make_config(max_steps=6, save_steps=2, micro_batch_size=4, output_dir=str(finished / "full"))
    if not (finished / "full" / "model.safetensors").exists():
        train(full)
    folder = tmp_path / "resumed"
    for step in (2, 4):
        shutil.copytree(finished / "full" / f"checkpoint-{step}", folder / f"checkpoint-{step}")
    damage(folder / "checkpoint-4")
    resumed = make_config(max_steps=6, save_steps=2, micro_batch_size=4, output_dir=str(folder),
                          auto_resume_from_checkpoints=True)
    return full, folder, resumed


def truncate_weights(folder):
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def unfinished(folder):  # killed before the marker was written
    (folder / "axo_checkpoint.json").unlink()


def emptied(folder):  # killed just after the folder was made
    shutil.rmtree(folder)
    folder.mkdir()


@pytest.mark.parametrize("damage", [truncate_weights, unfinished, emptied], ids=lambda f: f.__name__)
def test_auto_resume_skips_a_damaged_newest_checkpoint(make_config, tmp_path, finished, damage, caplog):
    full, folder, resumed = damaged_run(make_config, tmp_path, finished, damage)
    with caplog.at_level("INFO", logger="axo"):
        train(resumed)
    assert f"Skipping {folder / 'checkpoint-4'}" in caplog.text
    assert f"Resuming from {folder / 'checkpoint-2'}" in caplog.text
    a, b = load_file(finished / "full" / "model.safetensors"), load_file(folder / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=0, msg=name)
    assert (folder / "checkpoint-4" / "axo_checkpoint.json").exists()  # written again, whole


def test_a_full_disk_is_reported_as_such_with_the_checkpoint_to_resume(make_config, tmp_path, finished):
    import errno

    from axo.train.checkpoints import disk_full_reported

    full = make_config(max_steps=6, save_steps=2, micro_batch_size=4, output_dir=str(finished / "full"))
    if not (finished / "full" / "model.safetensors").exists():
        train(full)
    with pytest.raises(AxoError) as err:
        with disk_full_reported(str(finished / "full")):
            raise OSError(errno.ENOSPC, "No space left on device", str(finished / "full" / "checkpoint-8"))
    message = str(err.value)
    assert f"the disk holding {finished / 'full'} is full" in message and "MB free" in message
    assert "a checkpoint of this run takes" in message and str(finished / "full" / "checkpoint-6") in message
    with pytest.raises(ValueError):  # anything else passes through untouched
        with disk_full_reported(str(tmp_path)):
            raise ValueError("not a disk problem")


def test_sigterm_saves_and_the_resumed_run_equals_an_uninterrupted_one(make_config, tmp_path):
    """SIGTERM at a (seeded) random step of `axo train`: the step finishes, a whole checkpoint is
    written, the exit status is 143; resuming lands on the uninterrupted run's weights."""
    import os
    import random
    import signal
    import subprocess
    import sys

    import yaml

    keys = {"max_steps": 12, "save_steps": 100, "micro_batch_size": 4, "learning_rate": 1e-3}
    full = make_config(**keys, output_dir=str(tmp_path / "full"))
    train(full)
    stopped = make_config(**keys, output_dir=str(tmp_path / "stopped"), auto_resume_from_checkpoints=True)
    path = tmp_path / "stopped.yml"
    path.write_text(yaml.safe_dump({k: v for k, v in stopped.to_flat().items() if v is not None}))
    at = random.Random(16).randint(2, 9)
    process = subprocess.Popen([sys.executable, "-m", "axo", "train", str(path)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    output = []
    for line in process.stdout:
        output.append(line)
        if f"step {at}/12" in line:
            process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=300) == 128 + signal.SIGTERM, "".join(output)[-3000:]
    text = "".join(output)
    assert "SIGTERM received: finishing this step, then saving a checkpoint" in text and "Traceback" not in text
    [checkpoint] = (tmp_path / "stopped").glob("checkpoint-*")
    step = int(checkpoint.name.split("-")[1])
    assert at <= step < 12 and (checkpoint / "axo_checkpoint.json").exists()
    summary = json.loads((tmp_path / "stopped" / "run_summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["reason"] == f"SIGTERM at step {step}"

    train(stopped)  # auto-resume
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "stopped" / "model.safetensors")
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=0, msg=name)


def test_code_next_to_a_config_never_replaces_a_real_module(tmp_path, alpaca_file, tiny_model):
    """A `json.py` and a `datasets.py` next to the config (each would crash if imported) are never run;
    the transform the config names loads from its own file, even though a module of the same name
    (`sort_rewards`, loaded from elsewhere) was imported first."""
    import subprocess
    import sys

    import yaml

    for shadow in ("json", "datasets", "random"):
        (tmp_path / f"{shadow}.py").write_text("raise SystemExit('the real module was replaced')\n")
    (tmp_path / "sort_rewards.py").write_text(
        "def to_prompt(row):\n    return {'prompt': 'from the config folder: ' + row['instruction']}\n"
        "def exact(completions, **kwargs):\n    return [0.0 for _ in completions]\n")
    config = {"base_model": str(tiny_model), "rl": "grpo", "output_dir": str(tmp_path / "out"),
              "trl": {"reward_funcs": ["sort_rewards.exact"], "num_generations": 2},
              "datasets": [{"path": str(alpaca_file), "type": "sort_rewards.to_prompt"}], "micro_batch_size": 2}
    (tmp_path / "cfg.yml").write_text(yaml.safe_dump(config))
    run = subprocess.run([sys.executable, "-m", "axo", "preprocess", str(tmp_path / "cfg.yml")], capture_output=True,
                         text=True, cwd=Path(__file__).parents[2])
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert "the real module was replaced" not in run.stdout + run.stderr

    from axo.config import load
    from axo.config.user_code import resolve

    sys.modules.pop("sort_rewards", None)
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "sort_rewards", Path(__file__).parents[1] / "fixtures" / "user_code" / "sort_rewards.py")
    elsewhere = importlib.util.module_from_spec(spec)
    sys.modules["sort_rewards"] = elsewhere
    spec.loader.exec_module(elsewhere)
    try:
        load(tmp_path / "cfg.yml")
        assert resolve("sort_rewards.to_prompt")({"instruction": "x"}) == {"prompt": "from the config folder: x"}
        assert sys.modules["sort_rewards"] is elsewhere  # untouched
        import json as real_json

        assert real_json.__file__ != str(tmp_path / "json.py")
    finally:
        sys.modules.pop("sort_rewards", None)


def test_a_changed_learning_rate_refuses_to_resume_into_a_finished_run(make_config):
    keys = {"max_steps": 3, "save_steps": 3, "auto_resume_from_checkpoints": True}
    train(make_config(**keys))
    with pytest.raises(AxoError) as err:
        train(make_config(**keys, learning_rate=1e-4))
    message = str(err.value)
    assert "auto-resume would continue" in message and "`learning_rate`: 0.003 then, 0.0001 now" in message
    assert "a new `output_dir`, or `--overwrite_output_dir true`" in message
    train(make_config(**keys))  # the same config resumes (nothing left to do) without complaint
    train(make_config(**keys, learning_rate=1e-4, overwrite_output_dir=True))  # a fresh run in its place
    record = json.loads((Path(make_config().train.output_dir) / "axo_run.json").read_text())
    assert record["keys"]["learning_rate"] == 1e-4


def test_lora_then_full_into_one_folder_is_refused_and_inference_loads_what_was_trained(make_config):
    from axo.model.loader import load_for_inference

    lora = {"adapter": "lora", "lora_r": 4, "lora_alpha": 8, "lora_target_linear": True}
    train(make_config(max_steps=2, **lora))
    with pytest.raises(AxoError, match="holds a run that trained an adapter; this config trains the whole model"):
        train(make_config(max_steps=2))
    full = make_config(max_steps=2, overwrite_output_dir=True)
    train(full)
    out = Path(full.train.output_dir)
    assert not (out / "adapter_config.json").exists()  # the old adapter went with --overwrite_output_dir
    _, _, what = load_for_inference(full)
    assert what.startswith("trained model")  # what the record says trained here, not base + old adapter


def test_ctrl_c_saves_and_exits_130(make_config, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    import yaml

    cfg = make_config(max_steps=200, save_steps=1000, micro_batch_size=4, output_dir=str(tmp_path / "out"))
    path = tmp_path / "cfg.yml"
    path.write_text(yaml.safe_dump({k: v for k, v in cfg.to_flat().items() if v is not None}))
    process = subprocess.Popen([sys.executable, "-m", "axo", "train", str(path)], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    output = []
    for line in process.stdout:
        output.append(line)
        if "step 2/200" in line:
            process.send_signal(signal.SIGINT)
    text = "".join(output)
    assert process.wait(timeout=300) == 128 + signal.SIGINT, text[-3000:]
    assert "SIGINT received" in text and "Traceback" not in text
    [checkpoint] = (tmp_path / "out").glob("checkpoint-*")
    assert (checkpoint / "axo_checkpoint.json").exists()
