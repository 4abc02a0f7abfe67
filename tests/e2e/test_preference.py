"""Preference methods end to end on the tiny model, on a learnable rule: the chosen answer sorts
the digits, the rejected one does not. The margin TRL logs must grow."""

import json
from pathlib import Path

import pytest
from peft import PeftModel
from transformers import AutoModelForCausalLM

from axo.train.preference import train
from conftest import EXAMPLES, read_log_history


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    rows = [json.loads(line) for line in (EXAMPLES / "data" / "sort_train.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["instruction"].startswith("Sort")][:48]
    path = tmp_path_factory.mktemp("pref") / "pairs.jsonl"
    with open(path, "w") as f:
        for r in rows:
            digits = r["instruction"].split(": ")[1]
            wrong = " ".join(reversed(r["output"].split()))  # sorted descending: wrong
            if wrong == r["output"]:
                continue
            f.write(json.dumps({"messages": [{"role": "user", "content": r["instruction"]}],
                                "chosen": {"role": "assistant", "content": r["output"]},
                                "rejected": {"role": "assistant", "content": wrong}, "digits": digits}) + "\n")
    return path


def history(cfg) -> list[dict]:
    return read_log_history(cfg.train.output_dir)


@pytest.mark.parametrize("method", ["dpo", "ipo"])
@pytest.mark.parametrize("adapter", [True, False], ids=["lora", "full"])
def test_dpo_family_margin_grows(make_config, pairs, method, adapter):
    keys = {"adapter": "lora", "lora_target_linear": True} if adapter else {}
    cfg = make_config(rl=method, datasets=[{"path": str(pairs), "type": "chat_template.default"}],
                      chat_template="chatml", max_steps=10, micro_batch_size=4, learning_rate=1e-2 if adapter else 3e-3,
                      sequence_len=256, save_steps=10, **keys)
    train(cfg)
    logs = [e for e in history(cfg) if "rewards/margins" in e]
    assert logs[-1]["rewards/margins"] > logs[0]["rewards/margins"] + 0.01, [e["rewards/margins"] for e in logs]
    out = Path(cfg.train.output_dir)
    if adapter:
        PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(cfg.model.base_model), out)
    else:
        AutoModelForCausalLM.from_pretrained(out)


@pytest.mark.parametrize("method,metric", [("orpo", "rewards/margins"), ("simpo", "rewards/margins")])
def test_orpo_and_simpo_margin_grows(make_config, pairs, method, metric):
    cfg = make_config(rl=method, datasets=[{"path": str(pairs), "type": "chat_template.default"}],
                      chat_template="chatml", max_steps=10, micro_batch_size=4, learning_rate=3e-3, sequence_len=256,
                      adapter="lora", lora_target_linear=True)
    train(cfg)
    logs = [e for e in history(cfg) if metric in e]
    assert logs[-1][metric] > logs[0][metric], [e[metric] for e in logs]


def test_kto(make_config, pairs, tmp_path):
    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    path = tmp_path / "kto.jsonl"
    with open(path, "w") as f:
        for r in rows:
            for answer, label in ((r["chosen"]["content"], True), (r["rejected"]["content"], False)):
                f.write(json.dumps({"prompt": r["messages"][0]["content"], "completion": answer, "label": label}) + "\n")
    cfg = make_config(rl="kto", datasets=[{"path": str(path), "type": "kto"}], chat_template="chatml", max_steps=10,
                      micro_batch_size=8, learning_rate=1e-2, sequence_len=256, adapter="lora", lora_target_linear=True)
    train(cfg)
    logs = [e for e in history(cfg) if "rewards/margins" in e]
    assert logs[-1]["rewards/margins"] > logs[0]["rewards/margins"], [e["rewards/margins"] for e in logs]
