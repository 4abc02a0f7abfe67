"""Helpers for data tests: tokenize hand-written rows through the real pipeline and read back
which text is trained."""

from datasets import Dataset

from axo.data.rows import tokenize_rows
from axo.data.tokenize import IGNORE


def tokenize(cfg, tokenizer, rows: list[dict], index: int = 0) -> list[dict]:
    """Rows -> [{input_ids, labels, length, status}] for datasets[index] of cfg."""
    ds = cfg.data.datasets[index]
    return tokenize_rows(Dataset.from_list(rows), ds, f"datasets[{index}]", cfg, tokenizer).to_list()


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
