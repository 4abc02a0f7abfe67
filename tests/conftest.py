"""Shared fixtures: a tiny Llama (hidden 32, 2 layers) built locally, small alpaca data, and a
helper that builds a validated config. Nothing is downloaded."""

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from transformers import TrainerCallback

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
sys.path.insert(0, str(EXAMPLES))  # the examples' model and data builders (make_tiny_multimodal, ...)


def build_tiny_model(folder: Path, hidden: int) -> Path:
    """A 2-layer Llama with saved random weights and the examples' tokenizer (no pad token)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(EXAMPLES / "tiny-llama" / name, folder / name)
    config = AutoConfig.from_pretrained(EXAMPLES / "tiny-llama")
    config.update({"hidden_size": hidden, "intermediate_size": 2 * hidden, "num_hidden_layers": 2,
                   "num_attention_heads": 4, "num_key_value_heads": 2,
                   # wider init than 0.02: with tied embeddings that small, a frozen random
                   # base caps how peaked the logits can get, and LoRA could barely lower the loss
                   "initializer_range": 0.2})
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"), hidden=32)


@pytest.fixture(scope="session")
def tiny_model_64(tmp_path_factory) -> Path:
    """Hidden 64: bitsandbytes 0.50 cannot run a 4-bit layer of 32x32 weights once peft wraps a
    loaded adapter around it ("shape '[128, 0]' is invalid"), so QLoRA tests use this one."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama-64"), hidden=64)


@pytest.fixture(scope="session")
def alpaca_file(tmp_path_factory) -> Path:
    """64 rows of the digit task."""
    path = tmp_path_factory.mktemp("data") / "sort.jsonl"
    lines = (EXAMPLES / "data" / "sort_train.jsonl").read_text().splitlines()[:64]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def make_config(tmp_path, tiny_model, alpaca_file):
    """make_config(**keys) -> validated Config for the tiny model; keys override the defaults."""
    from axo.config import validate

    def build(**keys):
        raw = {
            "base_model": str(tiny_model),
            "datasets": [{"path": str(alpaca_file), "type": "alpaca"}],
            "output_dir": str(tmp_path / "out"),
            "sequence_len": 128,
            "micro_batch_size": 8,
            "learning_rate": 3e-3,
            "max_steps": 10,
            "logging_steps": 1,
            "seed": 0,
            **keys,
        }
        return validate(raw)

    return build


# examples/tiny.yml's prompt: the instruction and a line break (sort_rewards.to_prompt's too)
QUICKSTART_PROMPT = {"field_instruction": "instruction", "field_output": "output", "format": "{instruction}\n",
                     "no_input_format": "{instruction}\n"}


@pytest.fixture(scope="session")
def sft_start(tmp_path_factory):
    """The tiny model briefly SFT-trained on the tiny run's prompt (`sft/`, ~35% greedy exact
    match on the held-out rows; tests of online RL and benchmarks start from it), and eight of its
    prompts (`eight.jsonl`, and eight times each)."""
    from axo.config import validate
    from axo.train.sft import train as sft

    folder = tmp_path_factory.mktemp("online")
    warm = validate({"base_model": str(EXAMPLES / "tiny-llama"), "reinit_weights": True, "sequence_len": 128,
                     "seed": 0, "logging_steps": 1, "save_steps": 10_000,
                     "datasets": [{"path": str(EXAMPLES / "data" / "sort_train.jsonl"), "type": QUICKSTART_PROMPT}],
                     "output_dir": str(folder / "sft"), "micro_batch_size": 32, "max_steps": 900,
                     "learning_rate": 3e-3, "warmup_steps": 30})
    sft(warm)
    rows = [line for line in (EXAMPLES / "data" / "sort_train.jsonl").read_text().splitlines() if '"Sort' in line]
    (folder / "eight.jsonl").write_text("\n".join(rows[:8]) + "\n")
    (folder / "eight-x8.jsonl").write_text("\n".join(rows[:8] * 8) + "\n")  # a batch: 8 prompts, 8 times
    return folder


@pytest.fixture(autouse=True)
def forget_config_folders():
    """Each test starts as a fresh process would: no earlier test's config folder holds user code."""
    from axo.config import user_code

    yield
    user_code.CONFIG_DIRS.clear()


class Losses(TrainerCallback):
    """Keeps every logged training loss, in `seen`."""

    def __init__(self):
        self.seen = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.seen.append(logs["loss"])


def read_log_history(output_dir) -> list[dict]:
    """Trainer's log history from the newest checkpoint."""
    states = sorted(Path(output_dir).glob("checkpoint-*/trainer_state.json"),
                    key=lambda p: int(p.parent.name.split("-")[1]))
    return json.loads(states[-1].read_text())["log_history"]
