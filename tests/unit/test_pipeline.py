"""One data pipeline for every method: for each entry of the method table, the length policy
(excess_length_strategy), the bad-row policy (skip_bad_rows), exact deduplication and the
prepared-data cache do the same thing, or the config refuses the key naming the method."""

import json
from pathlib import Path

import pytest

from axo.data.prepare import prepare
from axo.errors import AxoError, ConfigError
from axo.methods import METHODS
from axo.model.tokenizer import load_tokenizer

USER_CODE = Path(__file__).parents[1] / "fixtures" / "user_code"
LONG = "9 " * 60  # far over sequence_len below, whatever the row kind adds around it
CHAT = {"chat_template": "chatml"}


def pair(prompt: str, chosen: str = "1 2 3") -> dict:
    return {"prompt": prompt, "chosen": chosen, "rejected": "3 2 1"}


# method -> (config keys, dataset type, a good row, a malformed row (its bad field), a long row whose
# answer runs past sequence_len: truncating it keeps a trained start)
ROWS = {
    "sft": ({}, "alpaca", {"instruction": "Sort 3 1 2", "output": "1 2 3"},
            ({"instruction": "Sort", "output": None}, "output"), {"instruction": "Sort", "output": LONG}),
    # (a long answer: TRL's truncation keeps the prompt and cuts the answer)
    "pairs": (CHAT, "chatml.prompt_pairs", pair("3 1 2"), ({**pair("3 1 2"), "chosen": 5}, "chosen"),
              pair("3 1 2", LONG)),
    "kto": (CHAT, "kto", {"prompt": "3 1 2", "completion": "1 2 3", "label": True},
            ({"prompt": "3 1 2", "completion": "1 2 3", "label": "yes"}, "label"),
            {"prompt": "3 1 2", "completion": LONG, "label": False}),
    "process_reward": ({"model_type": "AutoModelForTokenClassification", "num_labels": 2}, "stepwise_supervised",
                       {"prompt": "Sort 3 1 2", "completions": ["1 2 3"], "labels": [True]},
                       ({"prompt": "Sort 3 1 2", "completions": ["1 2 3"], "labels": ["yes"]}, "labels"),
                       {"prompt": "Sort", "completions": ["9"] * 60, "labels": [False] * 60}),
    "grpo": ({**CHAT, "trl": {"reward_funcs": ["sort_rewards.exact"], "max_completion_length": 8}}, "chat_template",
             {"messages": [{"role": "user", "content": "Sort 3 1 2"}], "answer": "1 2 3"},
             ({"messages": "Sort 3 1 2", "answer": "1 2 3"}, "messages"),
             {"messages": [{"role": "user", "content": LONG}], "answer": "9"}),
    "kd": ({}, "alpaca", {"instruction": "Sort 3 1 2", "output": "1 2 3", "lp": [{"5": -0.1, "6": -2.0}]},
           ({"instruction": "Sort 3 1 2", "output": "1 2 3", "lp": "oops"}, "lp"),
           {"instruction": "Sort", "output": LONG, "lp": []}),
    "ebft": ({**CHAT, "trl": {"max_completion_length": 8}}, "chat_template",
             {"messages": [{"role": "user", "content": "Sort 3 1 2"}], "ground_truth": "1 2 3"},
             ({"messages": "Sort 3 1 2", "ground_truth": "1 2 3"}, "messages"),
             {"messages": [{"role": "user", "content": LONG}], "ground_truth": "9"}),
}
SAME_ROWS = {"rloo": "grpo", "online_dpo": "grpo", "gkd": "sft"}  # methods that read another's rows
METHOD_KEYS = {"sft": {}, "dpo": {"rl": "dpo"}, "ipo": {"rl": "ipo"}, "orpo": {"rl": "orpo"},
               "simpo": {"rl": "simpo"}, "kto": {"rl": "kto"}, "grpo": {"rl": "grpo"},
               "ebft": {"rl": "ebft"}, "rloo": {"rl": "rloo"}, "online_dpo": {"rl": "online_dpo"},
               "kd": {"kd_trainer": True}, "gkd": {"rl": "gkd", "teacher_model": "teacher"}, "reward": {"reward_model": True, "model_type": "AutoModelForSequenceClassification", "num_labels": 1},
               "process_reward": {"process_reward_model": True}}


@pytest.fixture(autouse=True)
def user_code(monkeypatch):
    monkeypatch.syspath_prepend(str(USER_CODE))


def test_every_method_is_covered():
    assert set(METHOD_KEYS) == set(METHODS)


@pytest.mark.parametrize("method", list(METHODS))
def test_data_keys_mean_the_same_for_every_method(method, make_config, tmp_path):
    keys, ds_type, good, (bad, bad_field), long = ROWS.get(method, ROWS[SAME_ROWS.get(method, "pairs")])
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (good, good, bad, long)))

    def config(**more):
        entry = {"path": str(path), "type": ds_type, **({"logprobs_field": "lp"} if method == "kd" else {})}
        return make_config(**METHOD_KEYS[method], **keys, datasets=[entry],
                           sequence_len=64, dataset_prepared_path=str(tmp_path / "cache"), **more)

    tokenizer = load_tokenizer(config())
    cfg = config(skip_bad_rows=True, dataset_exact_deduplication=True)
    data = prepare(cfg, tokenizer)
    [stats, dedup] = data.stats
    assert (stats["rows_in"], stats["skipped_bad"], stats["dropped_too_long"], stats["rows_out"]) == (4, 1, 1, 2)
    assert dedup["removed"] == {"train": 1} and len(data.train) == 1
    assert not data.cache_hit
    again = prepare(cfg, tokenizer)
    assert again.cache_hit and again.train.to_list() == data.train.to_list()

    with pytest.raises(AxoError, match=rf"`datasets\[0\]` \(.*\) row 3: field '{bad_field}'"):
        prepare(config(), tokenizer)  # a malformed row stops preparation, naming row and field
    with pytest.raises(AxoError, match=r"row 4: \d+ tokens, more than sequence_len=64"):
        prepare(config(skip_bad_rows=True, excess_length_strategy="raise"), tokenizer)
    if METHODS[method].truncates:
        truncated = prepare(config(skip_bad_rows=True, excess_length_strategy="truncate"), tokenizer)
        assert truncated.stats[0]["truncated"] == 1 and truncated.stats[0]["len_max"] <= 64
    else:
        with pytest.raises(ConfigError, match=rf"`excess_length_strategy`: `truncate` does not apply to .*{method}"):
            config(excess_length_strategy="truncate")
