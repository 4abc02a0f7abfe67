"""End to end on a tiny Llama: full fine-tune and LoRA train, losses fall, outputs reload in plain
transformers / peft, merged logits match the adapter's, and resumed runs match uninterrupted ones."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from axo.config import validate
from axo.data.formats import alpaca
from axo.train.outputs import CONFIG_FILE
from axo.train.sft import train
from conftest import read_log_history

LORA = {"adapter": "lora", "lora_r": 8, "lora_alpha": 16, "lora_target_linear": True}


def losses(output_dir) -> list[float]:
    return [e["loss"] for e in read_log_history(output_dir) if "loss" in e]


def sample_input(tokenizer):
    return tokenizer(alpaca.build_prompt("Sort the digits: 3 1 2") + "1 2 3", return_tensors="pt")


def test_full_finetune_learns_and_reloads_in_plain_transformers(make_config):
    cfg = make_config(max_steps=30, save_steps=30, learning_rate=1e-2, use_tensorboard=True)
    summary = train(cfg)
    out = Path(cfg.train.output_dir)

    loss = losses(out)
    assert sum(loss[-3:]) / 3 < 0.7 * sum(loss[:3]) / 3, loss
    assert summary["precision"] == "fp32" and summary["data"][0]["rows_out"] == 64
    planned, measured = summary["memory"]["planned"], summary["memory"]["measured"]  # the plan checked by the run
    for kind in ("weights_bytes", "gradients_bytes", "optimizer_bytes"):
        assert planned[kind] == pytest.approx(measured[kind], rel=0.05), kind

    assert (out / "model.safetensors").exists()
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    saved = load_file(out / "model.safetensors")
    assert torch.equal(model.state_dict()["model.norm.weight"], saved["model.norm.weight"])
    assert tokenizer.eos_token == "</s>"
    assert validate(yaml.safe_load((out / CONFIG_FILE).read_text())) == cfg
    assert list((out / "runs").rglob("events.out.tfevents.*")), "tensorboard logs missing"


def test_lora_trains_only_the_adapter_and_merges_exactly(make_config, tiny_model):
    from peft import PeftModel

    from axo.export.merge import merge_lora

    cfg = make_config(max_steps=30, learning_rate=2e-2, **LORA)
    memory = train(cfg)["memory"]
    assert memory["planned"]["state_bytes"] == pytest.approx(memory["measured"]["state_bytes"], rel=0.05)
    out = Path(cfg.train.output_dir)

    loss = losses(out)
    assert sum(loss[-3:]) / 3 < 0.8 * sum(loss[:3]) / 3, loss
    assert (out / "adapter_model.safetensors").exists() and not (out / "model.safetensors").exists()

    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    tokenizer = AutoTokenizer.from_pretrained(out)
    inputs = sample_input(tokenizer)
    with torch.no_grad():
        base_logits = base(**inputs).logits
        adapted = PeftModel.from_pretrained(base, out).eval()
        adapter_logits = adapted(**inputs).logits
    assert not torch.allclose(base_logits, adapter_logits, atol=1e-4)  # the adapter learned something

    merged_dir = merge_lora(cfg)
    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    with torch.no_grad():
        merged_logits = merged(**inputs).logits
    torch.testing.assert_close(merged_logits, adapter_logits, atol=1e-4, rtol=0)


def test_resumed_run_matches_uninterrupted_run(make_config, tmp_path):
    """Stop after 4 of 8 steps (a copy of checkpoint-4 is what an interrupted run leaves), resume
    with auto_resume_from_checkpoints, and land on the same weights as the run that never stopped.
    Works because checkpoints hold optimizer, scheduler and RNG state, and the sampler is seeded."""
    full = make_config(max_steps=8, save_steps=4, micro_batch_size=4)
    train(full)
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    shutil.copytree(Path(full.train.output_dir) / "checkpoint-4", resumed_dir / "checkpoint-4")
    resumed = make_config(max_steps=8, save_steps=4, micro_batch_size=4,
                          output_dir=str(resumed_dir), auto_resume_from_checkpoints=True)
    train(resumed)

    a = load_file(Path(full.train.output_dir) / "model.safetensors")
    b = load_file(resumed_dir / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=0, msg=name)
    logged_steps = [e["step"] for e in read_log_history(resumed_dir) if "loss" in e]
    assert logged_steps == list(range(1, 9))  # 1-4 from the checkpoint, 5-8 after resuming


def cli(*args, env=None, stdin=""):
    return subprocess.run([sys.executable, "-m", "axo", *map(str, args)], capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, input=stdin)


def write_config(cfg, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg.to_flat()))
    return path


def test_cli_train_evaluate_inference(make_config, tmp_path, alpaca_file):
    cfg = make_config(max_steps=4, test_datasets=[{"path": str(alpaca_file), "type": "alpaca"}])
    path = write_config(cfg, tmp_path / "cfg.yml")
    run = cli("train", path, "--max_steps", "3")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "step 3/3 | loss" in run.stdout + run.stderr
    assert "Traceback" not in run.stderr

    run = cli("evaluate", path, "--exact-match", "--limit", "4")
    assert run.returncode == 0, run.stderr[-3000:]
    metrics = dict(line.split(": ", 1) for line in run.stdout.splitlines())
    assert metrics["model"].startswith("trained model") and metrics["eval_rows"] == "4"
    assert float(metrics["perplexity"]) > 1 and 0 <= float(metrics["exact_match"]) <= 1

    run = cli("inference", path, "--prompt", "Sort the digits: 3 1 2", "--max-new-tokens", "5")
    assert run.returncode == 0, run.stderr[-3000:]
    run = cli("inference", path, "--max-new-tokens", "5", stdin="Sort the digits: 3 1 2\nexit\n")
    assert run.returncode == 0 and "adapter" not in run.stderr and "trained model" in run.stderr
    run = cli("preprocess", path)
    assert run.returncode == 0 and "from cache" in run.stdout


def test_offline_hub_model_error_names_base_model(make_config, tmp_path):
    cfg = make_config(base_model="nobody/not-a-real-model-xyz")
    run = cli("train", write_config(cfg, tmp_path / "cfg.yml"), env={"HF_HUB_OFFLINE": "1"})
    assert run.returncode == 2
    assert "`base_model`" in run.stderr and "not-a-real-model-xyz" in run.stderr
    assert "Traceback" not in run.stderr


def test_inference_uses_the_training_prompt_format(make_config):
    from axo.infer.generate import load_generator

    cfg = make_config()
    gen = load_generator(cfg)  # nothing trained yet: the base model
    text = "Sort the digits: 9 8"
    encoded = gen.encode(text)["input_ids"][0].tolist()
    assert encoded == gen.tokenizer(alpaca.build_prompt(text))["input_ids"]
    assert isinstance(gen.stream(text, max_new_tokens=3, temperature=0.0), str)


def test_mlflow_file_store_and_wandb_offline_receive_metrics(make_config, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_ALLOW_FILE_STORE",
                "WANDB_PROJECT", "WANDB_MODE"):
        monkeypatch.setenv(var, "")  # train() sets them from the config; undo after the test
    mlruns = tmp_path / "mlruns"
    cfg = make_config(max_steps=3, use_mlflow=True, mlflow_tracking_uri=mlruns.as_uri(),
                      mlflow_experiment_name="axo-test", use_wandb=True, wandb_project="axo-test",
                      wandb_mode="offline")
    train(cfg)
    loss_files = list(mlruns.rglob("metrics/loss"))
    assert loss_files and len(loss_files[0].read_text().splitlines()) == 3
    assert list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))


def test_rows_with_nothing_to_train_are_dropped_and_counted(make_config, tmp_path):
    """A chat without an assistant turn, and an answer truncated away, train no token: in a
    micro-batch of their own they made the loss 0/0 (NaN loss, NaN weights)."""
    import json
    import math

    rows = [{"messages": [{"role": "user", "content": "3 1 2"}, {"role": "assistant", "content": "1 2 3"}]}] * 6
    rows += [{"messages": [{"role": "user", "content": "no answer here"}]}] * 3
    rows += [{"messages": [{"role": "user", "content": "9 " * 40}, {"role": "assistant", "content": "9"}]}] * 3
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = make_config(datasets=[{"path": str(path), "type": "chat_template"}], chat_template="chatml",
                      excess_length_strategy="truncate", sequence_len=64, micro_batch_size=1, max_steps=6,
                      shuffle_merged_datasets=False)
    summary = train(cfg)
    [stats] = summary["data"]
    assert stats["dropped_untrained"] == 6 and stats["rows_out"] == 6
    losses = [e["loss"] for e in read_log_history(cfg.train.output_dir) if "loss" in e]
    assert len(losses) == 6 and all(math.isfinite(x) for x in losses)
    model = AutoModelForCausalLM.from_pretrained(cfg.train.output_dir)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_a_bf16_full_finetune_keeps_fp32_master_weights(make_config, tiny_model):
    """At learning_rate 2e-5 most Adam updates are far below the bf16 step of a weight: bf16 weights
    alone keep almost none of them; fp32 master weights keep them all. (bf16 math on a CPU is slow,
    but this model is tiny.)"""
    name = "model.layers.0.self_attn.q_proj.weight"
    start = load_file(tiny_model / "model.safetensors")[name]
    changed = {}
    for bf16 in (True, "full"):
        cfg = make_config(bf16=bf16, learning_rate=2e-5, max_steps=2, output_dir=str(tiny_model.parent / f"bf16-{bf16}"))
        train(cfg)
        trained = load_file(Path(cfg.train.output_dir) / "model.safetensors")[name]
        changed[bf16] = (trained != start.to(trained.dtype)).float().mean().item()
        assert trained.dtype == (torch.float32 if bf16 is True else torch.bfloat16)
    assert changed[True] > 0.95 and changed["full"] < 0.1, changed
