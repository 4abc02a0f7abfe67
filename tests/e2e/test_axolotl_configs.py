"""Configs written the way Axolotl 0.19 users write them for a CPU run train unchanged through
`axo train` (GPU-only keys skipped with a warning, Axolotl spellings mapped), also on 2 processes;
and the training keys axo implemented for them have their effect."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from axo.train.sft import train
from conftest import EXAMPLES, read_log_history

# What an Axolotl user's CPU config carries beyond the essentials: nulls, GPU switches, the 0.19 keys.
COMMON = """
strict: false
dataset_prepared_path: {tmp}/prepared
output_dir: {tmp}/out
sequence_len: 128
gradient_accumulation_steps: 1
micro_batch_size: 4
num_epochs: 1
max_steps: 2
optimizer: adamw_bnb_8bit
lr_scheduler: cosine
learning_rate: 0.0002
bf16: auto
fp16:
tf32: false
flash_attention: true
gradient_checkpointing: true
warmup_steps: 0.1
logging_steps: 1
evals_per_epoch: 0
saves_per_epoch: 1
save_strategy: "no"
weight_decay: 0.0
wandb_project:
wandb_watch:
wandb_log_model:
early_stopping_patience:
resume_from_checkpoint:
local_rank:
xformers_attention:
debug:
deepspeed:
fsdp:
fsdp_config:
dataset_num_proc: 1
dataloader_num_workers: 0
dataloader_pin_memory: false
"""
ALPACA_LORA = """
base_model: {model}
model_type: AutoModelForCausalLM
tokenizer_type: AutoTokenizer
load_in_8bit: false
load_in_4bit: false
datasets:
  - path: {alpaca}
    type: alpaca
val_set_size: 0
adapter: lora
lora_model_dir:
lora_r: 8
lora_alpha: 16
lora_dropout: 0.05
lora_target_linear: true
lora_fan_in_fan_out:
train_on_inputs: false
group_by_length: false
sample_packing: false
"""
CHAT_PACKING = """
base_model: {model}
chat_template: chatml
tokens: ["<|im_start|>", "<|im_end|>"]
datasets:
  - path: {chat}
    type: chat_template
    field_messages: conversations
    message_property_mappings:
      role: from
      content: value
    roles_to_train: ["assistant"]
sample_packing: true
eval_sample_packing: false
pad_to_sequence_len: true
plugins:
  - axolotl.integrations.liger.LigerPlugin
liger_rms_norm: true
liger_glu_activation: true
"""
DPO_LORA = """
base_model: {model}
rl: dpo
rl_beta: 0.1
chat_template: chatml
datasets:
  - path: {pairs}
    type: chat_template.default
    field_messages: messages
    field_chosen: chosen
    field_rejected: rejected
adapter: lora
lora_r: 8
lora_alpha: 16
lora_target_linear: true
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("axolotl-data")
    rows = [json.loads(line) for line in (EXAMPLES / "data" / "sort_train.jsonl").read_text().splitlines()[:32]]
    (folder / "alpaca.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    chats = [{"conversations": [{"from": "human", "value": r["instruction"]}, {"from": "gpt", "value": r["output"]}]}
             for r in rows]
    (folder / "chat.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chats))
    pairs = (EXAMPLES / "data" / "sort_pairs.jsonl").read_text().splitlines()[:32]
    (folder / "pairs.jsonl").write_text("\n".join(pairs) + "\n")
    return folder


def run(config: str, tmp_path: Path, tiny_model, data, *extra: str) -> subprocess.CompletedProcess:
    path = tmp_path / "axolotl.yml"
    path.write_text(config.format(model=tiny_model, tmp=tmp_path, alpaca=data / "alpaca.jsonl",
                                  chat=data / "chat.jsonl", pairs=data / "pairs.jsonl") + COMMON.format(tmp=tmp_path))
    result = subprocess.run([sys.executable, "-m", "axo", "train", str(path), *extra], capture_output=True, text=True,
                            timeout=900, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "Traceback" not in result.stderr
    return result


@pytest.mark.parametrize("config,saved", [(ALPACA_LORA, "adapter_config.json"), (CHAT_PACKING, "config.json"),
                                          (DPO_LORA, "adapter_config.json")], ids=["alpaca-lora", "chat-packing", "dpo-lora"])
def test_axolotl_cpu_configs_train_unchanged(config, saved, tmp_path, tiny_model, data):
    result = run(config, tmp_path, tiny_model, data)
    out = tmp_path / "out"
    assert (out / saved).exists() and json.loads((out / "run_summary.json").read_text())["train_loss"] > 0
    log = result.stderr
    assert "`dataset_num_proc` (line" in log and "axo's `dataset_processes`" in log  # mapped, said once
    assert "training with sdpa, which computes the same attention" in log  # flash_attention on a CPU
    assert not list(out.glob("checkpoint-*"))  # save_strategy: "no"
    if config is CHAT_PACKING:
        # Liger's kernels are mapped, then left out on a CPU with one warning: the same math runs
        assert "`liger_rms_norm` (line" in log and "`use_liger_kernel` with the `rms_norm` kernel" in log
        assert "`use_liger_kernel: true` needs a CUDA GPU" in log and "Packed train:" in log


def test_an_axolotl_config_trains_on_two_processes(tmp_path, tiny_model, data):
    result = run(ALPACA_LORA, tmp_path, tiny_model, data, "--num-processes", "2")
    assert "launching:" in result.stderr and (tmp_path / "out" / "adapter_config.json").exists()


def test_loss_watchdog_stops_a_run_whose_loss_stays_high(make_config):
    from axo.errors import AxoError

    cfg = make_config(loss_watchdog_threshold=0.01, loss_watchdog_patience=2, max_steps=10, save_steps=1)
    with pytest.raises(AxoError, match="the loss stayed above loss_watchdog_threshold=0.01 for 2 logged steps"):
        train(cfg)
    saved = sorted(int(p.name.split("-")[1]) for p in Path(cfg.train.output_dir).glob("checkpoint-*"))
    assert saved == [1]  # two logged losses above the threshold: step 2 stops the run and is not saved
    summary = json.loads((Path(cfg.train.output_dir) / "run_summary.json").read_text())
    assert summary["status"] == "failed" and "loss_watchdog_threshold" in summary["reason"]


def test_saves_per_epoch_first_step_and_cosine_floor(make_config):
    cfg = make_config(max_steps=None, num_epochs=1, micro_batch_size=8, saves_per_epoch=4, save_first_step=True,
                      cosine_min_lr_ratio=0.1, learning_rate=1e-3)
    train(cfg)  # 64 rows / 8 = 8 steps
    saved = sorted(int(p.name.split("-")[1]) for p in Path(cfg.train.output_dir).glob("checkpoint-*"))
    assert saved == [1, 2, 4, 6, 8]
    lrs = [e["learning_rate"] for e in read_log_history(cfg.train.output_dir) if "learning_rate" in e]
    assert 0.9e-4 <= lrs[-1] <= 2e-4  # cosine down to 10% of the peak, not to zero


def test_early_stopping_stops_when_the_metric_does_not_improve(make_config):
    # eval_loss falls, so "greater is better" never improves after the first eval: stop after 2 more
    cfg = make_config(early_stopping_patience=2, metric_for_best_model="eval_loss", greater_is_better=True,
                      val_set_size=16, eval_steps=1, save_steps=1, max_steps=10)
    train(cfg)
    steps = [e["step"] for e in read_log_history(cfg.train.output_dir) if "eval_loss" in e]
    assert steps == [1, 2, 3]


@pytest.mark.parametrize("keys,expected", [
    ({"cosine_min_lr_ratio": 0.1, "cosine_constant_lr_ratio": 0.5},
     lambda step: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step, 4) / 4))),  # 8 steps: decay over 4, hold
    ({"lr_quadratic_warmup": True, "warmup_steps": 4},
     lambda step: (step / 4) ** 2 if step < 4 else 0.5 * (1 + math.cos(math.pi * (step - 4) / 4))),
], ids=["cosine-then-constant", "quadratic-warmup"])
def test_axolotl_schedules_set_the_learning_rate_each_step(make_config, keys, expected):
    cfg = make_config(max_steps=8, learning_rate=1e-3, **keys)
    train(cfg)
    logged = {e["step"]: e["learning_rate"] for e in read_log_history(cfg.train.output_dir) if "learning_rate" in e}
    # the learning rate logged at step s is the one step s trained with: the factor at s - 1
    assert logged == pytest.approx({s: 1e-3 * expected(s - 1) for s in logged}, rel=1e-6)
