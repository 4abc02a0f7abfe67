"""Process reward models: step labels sit exactly on each step's separator, and a token
classifier trained on them scores held-out steps well above chance."""

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from axo.data.stepwise import tokenize_steps
from axo.data.tokenize import IGNORE
from axo.model.tokenizer import load_tokenizer
from axo.train.process_reward import train
from conftest import EXAMPLES


def steps_file(path: Path, rows) -> Path:
    with open(path, "w") as f:
        for i, r in enumerate(rows):
            good = i % 2 == 0
            answer = r["output"] if good else " ".join(reversed(r["output"].split()))
            f.write(json.dumps({"prompt": r["instruction"], "completions": ["I sort them.", answer],
                                "labels": [True, good]}) + "\n")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    rows = [json.loads(line) for line in (EXAMPLES / "data" / "sort_train.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["instruction"].startswith("Sort") and r["output"] != r["output"][::-1]]
    folder = tmp_path_factory.mktemp("prm")
    return steps_file(folder / "train.jsonl", rows[:160]), steps_file(folder / "test.jsonl", rows[160:240])


def prm_config(make_config, path, **keys):
    dataset_keys = {k: keys.pop(k) for k in ("step_separator", "train_on_last_step_only") if k in keys}
    return make_config(process_reward_model=True, model_type="AutoModelForTokenClassification", num_labels=2,
                       datasets=[{"path": str(path), "type": "stepwise_supervised", **dataset_keys}], **keys)


def test_step_labels_sit_on_separators(make_config, files):
    cfg = prm_config(make_config, files[0], step_separator=" ;")
    tokenizer = load_tokenizer(cfg)
    row = {"prompt": "Sort: 2 1", "completions": ["ok", "1 2"], "labels": [True, False]}
    ids, labels = tokenize_steps(row, cfg.data.datasets[0], tokenizer)
    scored = [(tokenizer.decode(ids[: i + 1]), label) for i, label in enumerate(labels)
              if label != IGNORE]
    assert scored == [("<s>Sort: 2 1 ;ok ;", 1), ("<s>Sort: 2 1 ;ok ;1 2 ;", 0)]  # steps follow separators directly
    last_only = prm_config(make_config, files[0], train_on_last_step_only=True).data.datasets[0]
    _, labels = tokenize_steps(row, last_only, tokenizer)
    assert [x for x in labels if x != IGNORE] == [0]


def test_process_reward_model_scores_held_out_steps(make_config, files):
    train_file, test_file = files
    cfg = prm_config(make_config, train_file, max_steps=200, learning_rate=3e-3, micro_batch_size=8, sequence_len=128)
    train(cfg)
    out = Path(cfg.train.output_dir)
    model = AutoModelForTokenClassification.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    hits = total = 0
    for line in test_file.read_text().splitlines():
        row = json.loads(line)
        ids, labels = tokenize_steps(row, cfg.data.datasets[0], tokenizer)
        with torch.no_grad():
            predicted = model(input_ids=torch.tensor([ids])).logits[0].argmax(-1)
        last = max(i for i, x in enumerate(labels) if x != IGNORE)  # the answer step
        hits += int(predicted[last]) == labels[last]
        total += 1
    assert hits / total > 0.7, hits / total
