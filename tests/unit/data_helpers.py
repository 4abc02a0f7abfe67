"""Helpers for data tests: prepare hand-written rows through the real pipeline and read back
which text is trained."""

import pickle

from datasets import Dataset

from axo.data.chat import context, setup_chat
from axo.data.rows import row_fates, row_kind
from axo.data.tokenize import IGNORE


def prepared(cfg, tokenizer, rows: list[dict], index: int = 0, list_key: str = "datasets") -> list[dict]:
    """Raw rows -> one dict per output row of the config's method: its columns (empty when dropped)
    plus `status` and `length`, for the dataset entry `list_key[index]` of cfg."""
    kind = row_kind(cfg, context(cfg, setup_chat(cfg, tokenizer), list_key, index, tokenizer))
    raw = Dataset.from_list(rows)
    kind.columns(raw)  # as the pipeline does first: missing columns are an error before any row
    fates = row_fates(raw, kind, cfg)
    return [{**(pickle.loads(f["row"]) if f["row"] else {"input_ids": [], "labels": []}),
             "status": f["status"], "length": f["length"]} for f in fates]


def tokenize(cfg, tokenizer, rows: list[dict], index: int = 0) -> list[dict]:
    """Rows -> [{input_ids, labels, length, status}] for datasets[index] of an SFT config."""
    return prepared(cfg, tokenizer, rows, index)


def trained_runs(tokenizer, row: dict) -> list[str]:
    """The trained tokens of a row, decoded, one string per contiguous run."""
    runs, current = [], []
    for token, label in zip(row["input_ids"], row["labels"]):
        if label != IGNORE:
            assert label == token, "a trained label must be the token itself"
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return [tokenizer.decode(run) for run in runs]


def text_of(tokenizer, row: dict) -> str:
    return tokenizer.decode(row["input_ids"])
