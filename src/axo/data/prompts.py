"""Prompts for GRPO: rows mapped by the user's transform (`type: my_module.transform`, returning
`prompt` and any fields the reward functions read) or by the chat_template prompt mapping (the
conversation up to its last user turn). Other columns travel along to the reward functions."""

from axo.config import Config
from axo.config.data import DatasetConfig
from axo.data.formats import Context, RowError
from axo.data.formats.chat_template import read_messages
from axo.errors import AxoError


def prepare_prompts(cfg: Config, tokenizer):
    import datasets

    from axo.config.user_code import resolve
    from axo.data.sources import load_rows

    parts = []
    for i, ds in enumerate(cfg.data.datasets):
        key = f"datasets[{i}]"
        rows = load_rows(ds, key)
        mapper = resolve(ds.type) if ds.is_transform else None
        parts.append(rows.map(_prompt_row, with_indices=True, desc=f"Prompts of {key}",
                              fn_kwargs={"mapper": mapper, "ds": ds, "ctx": Context(ds, cfg.data, tokenizer),
                                         "key": f"`{key}` ({ds.path})"}))
    train = datasets.concatenate_datasets(parts)
    return train.shuffle(seed=cfg.train.seed) if cfg.data.shuffle_merged_datasets else train


def _prompt_row(row, index, mapper, ds: DatasetConfig, ctx: Context, key: str) -> dict:
    if mapper is not None:
        out = mapper(dict(row))
        if not isinstance(out, dict) or "prompt" not in out:
            raise AxoError(f"{key} row {index}: the transform {ds.type!r} must return a dict with `prompt`, "
                           f"got {type(out).__name__}.")
        return out
    try:
        messages, _ = read_messages(row, ctx)
    except RowError as err:
        raise AxoError(f"{key} row {index}: field {err.field!r} {err.problem}. {err.fix}") from None
    while messages and messages[-1]["role"] == "assistant":
        messages.pop()  # the model writes the answer
    if not messages:
        raise AxoError(f"{key} row {index}: no prompt left once the assistant's answer is removed.")
    return {"prompt": messages}
