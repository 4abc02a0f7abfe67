"""One module per dataset `type`. Each turns a raw row into segments of text, each trained or
not; `axo.data.tokenize` turns those into input_ids and labels the same way for every format.

A format module has:
    segments(row, ctx) -> list[(text, trained)]   raises RowError for a malformed row
    columns(ctx) -> list[str]                      columns the data must have
    ADD_SPECIAL_TOKENS: bool                       let the tokenizer add BOS (templates write their own)
    SPLIT_LONG: bool                               cut long rows into chunks instead of dropping them
    prompt(text, ctx) -> str                       what `axo inference` shows the model
"""

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from axo.config.data import DataConfig, DatasetConfig

Segment = tuple[str, bool]


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
    template: str | None = None  # chat_template only
    eot: tuple[str, ...] = ()


def get_format(ds: DatasetConfig) -> ModuleType:
    from axo.data.formats import alpaca, chat_template, completion, input_output, user_defined

    if ds.type_name == "user_defined":
        return user_defined
    return {"alpaca": alpaca, "chat_template": chat_template, "completion": completion,
            "input_output": input_output}[ds.type_name]


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
