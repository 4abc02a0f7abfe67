"""One module per SFT dataset `type`. Each turns a raw row into segments of text, each trained or
not; `axo.data.tokenize` turns those into input_ids and labels the same way for every format.

A format module has:
    segments(row, ctx) -> list[(text, trained)]   raises RowError for a malformed row
    columns(ctx) -> list[str]                      columns the data must have
    ADD_SPECIAL_TOKENS: bool                       let the tokenizer add BOS (templates write their own)
    SPLIT_LONG: bool                               cut long rows into chunks instead of dropping them
    prompt(text, ctx) -> str                       what `axo inference` shows the model
"""

from types import ModuleType

from axo.config.data import DatasetConfig


def get_format(ds: DatasetConfig) -> ModuleType:
    from axo.data.formats import alpaca, chat_template, completion, input_output, user_defined

    return {"alpaca": alpaca, "chat_template": chat_template, "completion": completion,
            "input_output": input_output, "user_defined": user_defined}[ds.type_name]
