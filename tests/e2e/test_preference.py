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


def assert_reloads(cfg, adapter: bool) -> None:
    out = Path(cfg.train.output_dir)
    assert "rewards/margins" in (out / "report.html").read_text()  # the run report plots TRL's metrics too
    if adapter:
        PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(cfg.model.base_model), out)
    else:
        AutoModelForCausalLM.from_pretrained(out)


ADAPTER = pytest.mark.parametrize("adapter", [True, False], ids=["lora", "full"])


def lora(adapter: bool) -> dict:
    return {"adapter": "lora", "lora_target_linear": True} if adapter else {}


@pytest.mark.parametrize("method", ["dpo", "ipo", "orpo", "simpo"])
@ADAPTER
def test_pairwise_methods_margin_grows_and_output_reloads(make_config, pairs, method, adapter):
    cfg = make_config(rl=method, datasets=[{"path": str(pairs), "type": "chat_template.default"}],
                      chat_template="chatml", max_steps=10, micro_batch_size=4, sequence_len=256,
                      learning_rate=1e-2 if adapter else 3e-3, **lora(adapter))
    train(cfg)
    logs = [e for e in history(cfg) if "rewards/margins" in e]
    assert logs[-1]["rewards/margins"] > logs[0]["rewards/margins"], [e["rewards/margins"] for e in logs]
    assert_reloads(cfg, adapter)


@ADAPTER
def test_kto_margin_grows_and_output_reloads(make_config, pairs, tmp_path, adapter):
    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    path = tmp_path / "kto.jsonl"
    with open(path, "w") as f:
        for r in rows:
            for answer, label in ((r["chosen"]["content"], True), (r["rejected"]["content"], False)):
                f.write(json.dumps({"prompt": r["messages"][0]["content"], "completion": answer, "label": label}) + "\n")
    cfg = make_config(rl="kto", datasets=[{"path": str(path), "type": "kto"}], chat_template="chatml", max_steps=10,
                      micro_batch_size=8, sequence_len=256, learning_rate=1e-2 if adapter else 3e-3, **lora(adapter))
    train(cfg)
    logs = [e for e in history(cfg) if "rewards/margins" in e]
    assert logs[-1]["rewards/margins"] > logs[0]["rewards/margins"], [e["rewards/margins"] for e in logs]
    assert_reloads(cfg, adapter)
