"""stepwise_supervised rows for process reward models: {prompt, completions: [step, ...],
labels: [bool, ...]}. The text is the prompt, then each step followed by `step_separator`; the
last token of each separator carries its step's label (1 good, 0 bad), every other token -100."""

from axo.config import Config
from axo.config.data import DatasetConfig
from axo.data.formats import RowError, text_field
from axo.data.tokenize import IGNORE
from axo.errors import AxoError


def tokenize_steps(row: dict, ds: DatasetConfig, tokenizer, max_len: int) -> dict:
    steps, labels = row.get("completions"), row.get("labels")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        raise RowError("completions", "must be a non-empty list of step texts", "Fix the row.")
    if not isinstance(labels, list) or len(labels) != len(steps) or not all(isinstance(x, bool) for x in labels):
        raise RowError("labels", f"must be {len(steps)} true/false values, one per step", "Fix the row.")
    ids = tokenizer(text_field(row, "prompt") + ds.step_separator, add_special_tokens=True)["input_ids"]
    out = [IGNORE] * len(ids)
    separator = tokenizer(ds.step_separator, add_special_tokens=False)["input_ids"]
    for i, (step, good) in enumerate(zip(steps, labels)):
        step_ids = tokenizer(step, add_special_tokens=False)["input_ids"] + separator
        scored = not ds.train_on_last_step_only or i == len(steps) - 1
        ids += step_ids
        out += [IGNORE] * (len(step_ids) - 1) + [int(good) if scored else IGNORE]
    keep = len(ids) <= max_len
    return {"input_ids": ids if keep else [], "labels": out if keep else [], "keep": keep}


def prepare_steps(cfg: Config, tokenizer):
    """(train, eval) datasets of input_ids and per-token labels."""
    import datasets

    from axo.data.sources import load_rows

    def load_all(entries, list_key):
        parts = []
        for i, ds in enumerate(entries):
            key = f"{list_key}[{i}]"
            rows = load_rows(ds, key)
            part = rows.map(_encode, with_indices=True, remove_columns=rows.column_names, desc=f"Tokenizing {key}",
                            fn_kwargs={"ds": ds, "tokenizer": tokenizer, "max_len": cfg.data.sequence_len,
                                       "key": f"`{key}` ({ds.path})"})
            part = part.filter(lambda keep: keep, input_columns="keep").remove_columns("keep")
            if len(part) == 0:
                raise AxoError(f"`{key}`: every row is longer than sequence_len={cfg.data.sequence_len}.")
            parts.append(part)
        return datasets.concatenate_datasets(parts)

    train = load_all(cfg.data.datasets, "datasets")
    ev = load_all(cfg.data.test_datasets, "test_datasets") if cfg.data.test_datasets else None
    if ev is None and cfg.data.val_set_size:
        from axo.data.prepare import split_eval

        train, ev = split_eval(train, cfg)
    return train, ev


def _encode(row, index, ds, tokenizer, max_len, key):
    try:
        return tokenize_steps(row, ds, tokenizer, max_len)
    except RowError as err:
        raise AxoError(f"{key} row {index}: field {err.field!r} {err.problem}. {err.fix}") from None
