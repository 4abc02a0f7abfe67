"""Preference rows -> TRL's conversational format: {prompt: [messages], chosen: [assistant message],
rejected: [assistant message]} (KTO: {prompt, completion, label}). TRL renders them with the chat
template and tokenizes; the template is the dataset's (chatml.* and llama3.* name theirs)."""

import logging

from axo.config import Config
from axo.config.data import DatasetConfig
from axo.data.formats import Context, RowError, text_field
from axo.data.formats.chat_template import read_messages
from axo.errors import AxoError

log = logging.getLogger("axo")

# row shape -> (system column, prompt column, chosen column, rejected column)
SIMPLE_SHAPES = {
    "intel": ("system", "question", "chosen", "rejected"),
    "prompt_pairs": ("system", "prompt", "chosen", "rejected"),
    "argilla": ("system", "instruction", "chosen_response", "rejected_response"),
}


def template_of(ds: DatasetConfig) -> str | None:
    """The built-in template a `chatml.*` / `llama3.*` type implies."""
    family = ds.type_name.split(".")[0]
    return family if family in ("chatml", "llama3") else None


def to_trl_row(row: dict, ds: DatasetConfig, ctx: Context) -> dict:
    kind = ds.type_name.split(".")[-1]
    if ds.type_name == "user_defined.default":
        return _user_defined(row, ds.type)
    if ds.type_name == "kto":
        return {"prompt": _as_messages(row, "prompt", "user"), "completion": _as_messages(row, "completion", "assistant"),
                "label": _label(row)}
    if kind in SIMPLE_SHAPES:
        system, prompt, chosen, rejected = SIMPLE_SHAPES[kind]
        messages = ([{"role": "system", "content": row[system]}] if row.get(system) else [])
        messages.append({"role": "user", "content": text_field(row, prompt)})
    else:  # chat_template.default, bradley_terry.chat_template
        messages, _ = read_messages(row, ctx)
        chosen, rejected = ds.field_chosen, ds.field_rejected
    return {"prompt": messages, "chosen": _answer(row, chosen), "rejected": _answer(row, rejected)}


def _user_defined(row: dict, f) -> dict:
    """Plain text rows (TRL adds EOS to the answers)."""
    system = text_field(row, f.field_system, required=False)
    return {"prompt": f.prompt_format.format(prompt=text_field(row, f.field_prompt), system=system),
            "chosen": f.chosen_format.format(chosen=text_field(row, f.field_chosen)),
            "rejected": f.rejected_format.format(rejected=text_field(row, f.field_rejected))}


def _answer(row: dict, field: str) -> list[dict]:
    value = row.get(field)
    if isinstance(value, dict):  # a message
        value = value.get("content")
    if isinstance(value, list) and value and isinstance(value[-1], dict):  # a list of messages: the last answers
        value = value[-1].get("content")
    if not isinstance(value, str):
        raise RowError(field, "must be the answer's text (or a message holding it)",
                       f"Point `field_{'chosen' if 'chosen' in field else 'rejected'}` at the right column.")
    return [{"role": "assistant", "content": value}]


def _as_messages(row: dict, field: str, role: str) -> list[dict]:
    value = row.get(field)
    if isinstance(value, list):
        return value
    return [{"role": role, "content": text_field(row, field)}]


def _label(row: dict) -> bool:
    if not isinstance(row.get("label"), bool):
        raise RowError("label", f"must be true (desirable) or false, got {row.get('label')!r}", "Fix the row.")
    return row["label"]


def prepare_preference(cfg: Config, tokenizer):
    """(train, eval) datasets of TRL rows."""
    import datasets

    from axo.data.sources import load_rows

    def load_all(entries, list_key):
        parts = []
        for i, ds in enumerate(entries):
            key = f"{list_key}[{i}]"
            ctx = Context(ds, cfg.data, tokenizer)
            rows = load_rows(ds, key)
            parts.append(rows.map(_convert, with_indices=True, remove_columns=rows.column_names,
                                  fn_kwargs={"ds": ds, "ctx": ctx, "key": f"`{key}` ({ds.path})"},
                                  desc=f"Reading {key}"))
        return datasets.concatenate_datasets(parts)

    train = load_all(cfg.data.datasets, "datasets")
    if cfg.rl.max_prompt_len:
        train = _drop_long_prompts(train, tokenizer, cfg.rl.max_prompt_len)
    if cfg.data.shuffle_merged_datasets:
        train = train.shuffle(seed=cfg.train.seed).flatten_indices()
    ev = load_all(cfg.data.test_datasets, "test_datasets") if cfg.data.test_datasets else None
    if ev is None and cfg.data.val_set_size:
        from axo.data.prepare import split_eval

        train, ev = split_eval(train, cfg)
    return train, ev


def _convert(row, index, ds, ctx, key):
    try:
        return to_trl_row(row, ds, ctx)
    except RowError as err:
        raise AxoError(f"{key} row {index}: field {err.field!r} {err.problem}. {err.fix}") from None


def _drop_long_prompts(rows, tokenizer, limit: int):
    """max_prompt_len: TRL 1.16 has no prompt limit of its own, so rows over it are dropped here."""
    def short_enough(prompt):
        if isinstance(prompt, list):
            ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=False)
        else:
            ids = tokenizer(prompt)["input_ids"]
        return len(ids) <= limit

    kept = rows.filter(short_enough, input_columns="prompt")
    if len(kept) < len(rows):
        log.info("max_prompt_len=%d: dropped %d of %d rows with longer prompts", limit, len(rows) - len(kept), len(rows))
    if len(kept) == 0:
        raise AxoError(f"every prompt is longer than max_prompt_len={limit} tokens. Raise `max_prompt_len`.")
    return kept
