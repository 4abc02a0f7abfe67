"""What every row format and row kind shares: the context a dataset entry is read in, and the
error a malformed row raises (which field, and the fix)."""

from dataclasses import dataclass
from typing import Any

from axo.config.data import DataConfig, DatasetConfig

Segment = tuple[str, bool]  # a piece of text, and whether it is trained


class RowError(Exception):
    """A row the format cannot read: which field, and how to fix it."""

    def __init__(self, field: str, problem: str, fix: str):
        self.field, self.problem, self.fix = field, problem, fix
        super().__init__(f"field {field!r}: {problem}. {fix}")


@dataclass(frozen=True)
class Context:
    ds: DatasetConfig
    data: DataConfig
    tokenizer: Any
    template: str | None = None  # the chat template this dataset is rendered with (axo.data.chat)
    eot: tuple[str, ...] = ()  # its end-of-turn markers
    processor: Any = None  # image-text models: the processor that expands image tokens
    key: str = "datasets[0]"  # where the entry sits in the config, for messages


def text_field(row: dict, name: str, required: bool = True) -> str:
    value = row.get(name)
    if value is None and not required:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # CSV and parquet readers turn numeric answers into numbers
    if not isinstance(value, str):
        got = "missing" if value is None else f"{type(value).__name__} {value!r}"[:80]
        raise RowError(name, f"must be text, got {got}", "Fix or remove the row (or set `skip_bad_rows: true`).")
    return value
