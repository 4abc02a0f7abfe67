"""Seeded fuzzing: mutated configs (the examples' and Axolotl-style ones) and mutated dataset rows
either work or end in an AxoError, which the CLI prints as a message; never in another exception,
which would print a traceback. 160 config cases and 80 row cases."""

import copy
import json
import random

import pytest
import yaml

from axo.config import load
from axo.data.prepare import prepare
from axo.errors import AxoError
from axo.model.tokenizer import load_tokenizer
from conftest import EXAMPLES

VALUES = [None, 0, -1, 1, 3.5, 1e12, "", "x", "auto", True, False, [], [1], ["a"], {}, {"a": 1}, "1e-4",
          "../nope", "\u00e9\u4e2d", "null", 2 ** 63]
TYPOS = ["learning_rte", "datsets", "micro_batchsize", "lora_rr", "chat_templat", "sequence_length"]


def mutate_config(config: dict, rng: random.Random) -> tuple[dict, str]:
    config = copy.deepcopy(config)
    kind = rng.choice(["value", "drop", "typo", "entry", "nest", "type"])
    key = rng.choice(sorted(config))
    if kind == "value":
        config[key] = rng.choice(VALUES)
    elif kind == "drop":
        config.pop(key)
    elif kind == "typo":
        config[rng.choice(TYPOS)] = config.get(key, 1)
    elif kind == "entry" and config.get("datasets"):
        entry = config["datasets"][0] if isinstance(config["datasets"], list) else {}
        if isinstance(entry, dict):
            entry[rng.choice(["path", "type", "split", "field_messages", "roles", "bogus"])] = rng.choice(VALUES)
    elif kind == "nest":
        config[rng.choice(["trl", "qat", "fsdp_config", "ebft", "vllm", "special_tokens"])] = {
            rng.choice(["beta", "weight_dtype", "mode", "port", "pad_token", "nope"]): rng.choice(VALUES)}
    else:
        config[key] = [config[key]] if rng.random() < 0.5 else {"value": config[key]}
    return config, f"{kind} {key}"


CONFIGS = [yaml.safe_load(path.read_text()) for path in sorted(EXAMPLES.glob("*.yml"))] + [{
    "base_model": "org/model", "strict": False, "datasets": [{"path": "d.jsonl", "type": "alpaca:chat"}],
    "sample_packing": True, "adapter": "qlora", "load_in_4bit": True, "saves_per_epoch": 2, "evals_per_epoch": 0,
    "plugins": ["axolotl.integrations.liger.LigerPlugin"], "liger_rms_norm": True, "warmup_steps": 0.1}]


def test_mutated_configs_load_or_say_what_is_wrong(tmp_path):
    rng, crashes = random.Random(0), []
    for case in range(160):
        config, what = mutate_config(rng.choice(CONFIGS), rng)
        path = tmp_path / f"case{case}.yml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True))
        try:
            load(path)
        except AxoError:
            pass
        except Exception as err:  # noqa: BLE001 (any other exception is the failure being looked for)
            crashes.append(f"case {case} ({what}): {type(err).__name__}: {err}")
    assert not crashes, "\n".join(crashes)


ROWS = {
    "alpaca": {"instruction": "Sort: 3 1 2", "input": "", "output": "1 2 3"},
    "chat_template": {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "3 1 2"},
                                   {"role": "assistant", "content": "1 2 3"}]},
    "completion": {"text": "1 2 3 4 5"},
}


def mutate_row(row, rng: random.Random):
    row = copy.deepcopy(row)
    target = row
    if "messages" in row and rng.random() < 0.6:
        target = rng.choice(row["messages"])
        if rng.random() < 0.2:
            row["messages"] = rng.choice([[], "text", [None], [{"role": "robot"}], [1, 2]])
            return row
    key = rng.choice(sorted(target))
    choice = rng.random()
    if choice < 0.3:
        target.pop(key)
    else:
        target[key] = rng.choice(VALUES + ["x" * 5000, "\x00", "<|im_end|>", "</s>" * 3])
    return row


@pytest.mark.parametrize("row_type", sorted(ROWS))
def test_mutated_rows_prepare_or_name_the_row(make_config, tmp_path, row_type):
    rng, crashes = random.Random(row_type), []
    for case in range(27):
        rows = [ROWS[row_type], mutate_row(ROWS[row_type], rng), ROWS[row_type]]
        path = tmp_path / f"{row_type}{case}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        keys = {"chat_template": "chatml"} if row_type == "chat_template" else {}
        cfg = make_config(datasets=[{"path": str(path), "type": row_type}], sequence_len=64,
                          dataset_prepared_path=str(tmp_path / f"cache{case}"), **keys)
        try:
            prepare(cfg, load_tokenizer(cfg))
        except AxoError:
            pass
        except Exception as err:  # noqa: BLE001
            crashes.append(f"case {case} ({rows[1]!r:.200}): {type(err).__name__}: {err}")
    assert not crashes, "\n".join(crashes)
