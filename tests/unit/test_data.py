"""Alpaca tokenization and label masks, batching, row errors, and the prepared-data cache."""

import json

import pytest
import torch

from axo.data.collator import PadCollator
from axo.data.formats import alpaca
from axo.data.prepare import prepare
from axo.data.tokenize import IGNORE, tokenize_pair
from axo.errors import AxoError
from axo.model.loader import load_tokenizer

ROW = {"instruction": "Sort the digits: 3 1 2", "input": "", "output": "1 2 3"}


@pytest.fixture
def tokenizer(make_config):
    return load_tokenizer(make_config())


def trained_text(tokenizer, row) -> str:
    ids = [t for t in row["labels"] if t != IGNORE]
    return tokenizer.decode(ids)


def test_only_response_and_eos_are_trained(tokenizer):
    prompt, response = alpaca.split(ROW)
    row = tokenize_pair(tokenizer, prompt, response, train_on_inputs=False)
    n_prompt = len(tokenizer(prompt)["input_ids"])
    assert row["labels"][:n_prompt] == [IGNORE] * n_prompt
    assert row["labels"][n_prompt:] == row["input_ids"][n_prompt:]
    assert trained_text(tokenizer, row) == "1 2 3</s>"
    assert row["input_ids"][0] == tokenizer.bos_token_id
    assert row["input_ids"][-1] == tokenizer.eos_token_id


def test_train_on_inputs_trains_everything(tokenizer):
    row = tokenize_pair(tokenizer, *alpaca.split(ROW), train_on_inputs=True)
    assert row["labels"] == row["input_ids"]


def test_alpaca_prompt_with_and_without_input():
    with_input = alpaca.prompt("Add", "2 3")
    assert "### Input:\n2 3\n\n### Response:\n" in with_input
    assert "### Input" not in alpaca.prompt("Add")
    assert alpaca.prompt("Add", "").endswith("### Instruction:\nAdd\n\n### Response:\n")


def test_pad_equal_to_eos_does_not_mask_eos(tokenizer):
    assert tokenizer.pad_token_id == tokenizer.eos_token_id  # the tiny tokenizer has no pad/unk
    short = tokenize_pair(tokenizer, *alpaca.split(ROW), train_on_inputs=False)
    long = tokenize_pair(tokenizer, *alpaca.split({**ROW, "output": "1 2 3 4 5 6"}), False)
    batch = PadCollator(tokenizer.pad_token_id)([short, long])
    n = len(short["input_ids"])
    assert batch["labels"][0, n - 1] == tokenizer.eos_token_id  # trained EOS survives padding
    assert (batch["labels"][0, n:] == IGNORE).all()
    assert batch["attention_mask"][0].sum() == n and batch["attention_mask"][1].all()
    assert torch.equal(batch["input_ids"][1], torch.tensor(long["input_ids"]))


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_too_long_rows_are_dropped_and_counted(tmp_path, make_config, tokenizer):
    data = write_rows(tmp_path / "d.jsonl", [ROW, {**ROW, "output": " ".join("9" * 80)}])
    prepared = prepare(make_config(datasets=[{"path": str(data)}], sequence_len=64), tokenizer)
    assert len(prepared.train) == 1
    [stats] = prepared.stats
    assert stats["rows_in"] == 2 and stats["rows_out"] == 1 and stats["dropped_too_long"] == 1
    assert stats["trained_tokens"] == len(tokenizer("1 2 3", add_special_tokens=False)["input_ids"]) + 1


def test_missing_column_names_dataset_and_fix(tmp_path, make_config, tokenizer):
    data = write_rows(tmp_path / "d.jsonl", [{"prompt": "x", "output": "y"}])
    with pytest.raises(AxoError, match=r"datasets\[0\].*instruction.*Rename the columns"):
        prepare(make_config(datasets=[{"path": str(data)}]), tokenizer)


def test_bad_row_names_row_index(tmp_path, make_config, tokenizer):
    data = write_rows(tmp_path / "d.jsonl", [ROW, ROW, {**ROW, "output": None}])
    with pytest.raises(AxoError, match=r"row 2: field 'output' must be text"):
        prepare(make_config(datasets=[{"path": str(data)}]), tokenizer)


def test_every_row_too_long_is_a_clear_error(tmp_path, make_config, tokenizer):
    data = write_rows(tmp_path / "d.jsonl", [ROW])
    with pytest.raises(AxoError, match="no rows left.*sequence_len=8"):
        prepare(make_config(datasets=[{"path": str(data)}], sequence_len=8), tokenizer)


def test_missing_local_file_names_the_key(make_config, tokenizer):
    with pytest.raises(AxoError, match=r"`datasets\[0\].path`"):
        prepare(make_config(datasets=[{"path": "no/such/file.jsonl"}]), tokenizer)


def test_cache_is_reused_and_invalidated(tmp_path, make_config, tokenizer):
    data = write_rows(tmp_path / "d.jsonl", [ROW] * 4)
    keys = {"datasets": [{"path": str(data)}], "dataset_prepared_path": str(tmp_path / "cache")}
    first = prepare(make_config(**keys), tokenizer)
    again = prepare(make_config(**keys), tokenizer)
    assert not first.cache_hit and again.cache_hit
    assert again.train["input_ids"] == first.train["input_ids"]
    assert not prepare(make_config(**keys, sequence_len=100), tokenizer).cache_hit
    write_rows(data, [ROW] * 5)  # same path, new content
    changed = prepare(make_config(**keys), tokenizer)
    assert not changed.cache_hit and len(changed.train) == 5
    assert not list((tmp_path / "cache").glob("*.tmp-*"))


def test_val_set_size_splits_off_eval_rows(tmp_path, make_config, tokenizer):
    data = write_rows(tmp_path / "d.jsonl", [{**ROW, "output": str(i)} for i in range(10)])
    prepared = prepare(make_config(datasets=[{"path": str(data)}], val_set_size=0.2), tokenizer)
    assert len(prepared.train) == 8 and len(prepared.eval) == 2
