"""One dataset entry -> tokenized rows, with every row's fate recorded: kept, truncated, cut into
chunks, or dropped (too long, too short, malformed), so statistics and errors can name them."""

from axo.config import Config
from axo.config.data import DatasetConfig
from axo.data.formats import Context, RowError, get_format
from axo.data.templates import end_of_turn_tokens, resolve_template
from axo.data.tokenize import IGNORE, encode
from axo.errors import AxoError

KEPT = ("ok", "truncated", "chunk")
COLUMNS = ("input_ids", "labels", "length", "status")


def format_context(cfg: Config, ds: DatasetConfig, tokenizer) -> Context:
    if ds.type_name != "chat_template":
        return Context(ds, cfg.data, tokenizer)
    template = resolve_template(cfg.data, ds, tokenizer)
    return Context(ds, cfg.data, tokenizer, template, tuple(end_of_turn_tokens(cfg.data, template, tokenizer)))


def tokenize_rows(rows, ds: DatasetConfig, key: str, cfg: Config, tokenizer):
    """datasets.Dataset of raw rows -> Dataset with COLUMNS, one or more output rows per input row."""
    if ds.type is None:
        if "input_ids" not in rows.column_names:
            raise AxoError(f"`{key}.type` is not set and the rows of {ds.path!r} have no input_ids "
                           f"(columns: {rows.column_names}). Fix: set `type:` to alpaca, chat_template, "
                           "completion or input_output.")
        encode_fn, kwargs = _pretokenized_batch, {}
    else:
        ctx = format_context(cfg, ds, tokenizer)
        fmt = get_format(ds)
        missing = [c for c in fmt.columns(ctx) if c not in rows.column_names]
        if missing:
            raise AxoError(f"`{key}` ({ds.path}): type {ds.type_name!r} needs column(s) {missing}, but "
                           f"the data has {rows.column_names}. Rename the columns or change the field options.")
        encode_fn, kwargs = _format_batch, {"fmt": fmt, "ctx": ctx}
    return rows.map(
        encode_fn, batched=True, with_indices=True, remove_columns=rows.column_names,
        num_proc=cfg.data.dataset_processes, desc=f"Tokenizing {key}",
        fn_kwargs={**kwargs, "key": f"`{key}` ({ds.path})", "cfg": cfg, "tokenizer": tokenizer},
    )


def _format_batch(batch, indices, fmt, ctx, key, cfg, tokenizer):
    parsed = []  # per row, in order: its segments, or the RowError that stopped it
    for row in _rows(batch):
        try:
            parsed.append(fmt.segments(row, ctx))
        except RowError as err:
            parsed.append(err)
    good = [p for p in parsed if not isinstance(p, RowError)]
    encoded = iter(encode(tokenizer, good, fmt.ADD_SPECIAL_TOKENS, cfg.data.train_on_inputs))
    out = _empty()
    for result, index in zip(parsed, indices):
        if isinstance(result, RowError):
            _bad_row(out, result, index, key, cfg)
        else:
            _fit_length(out, *next(encoded), index, key, cfg, split=fmt.SPLIT_LONG)
    return out


def _pretokenized_batch(batch, indices, key, cfg, tokenizer):
    out = _empty()
    vocab = len(tokenizer)
    for row, index in zip(_rows(batch), indices):
        try:
            ids, labels = _check_tokens(row, vocab)
        except RowError as err:
            _bad_row(out, err, index, key, cfg)
            continue
        _fit_length(out, ids, labels, index, key, cfg, split=False)
    return out


def _check_tokens(row: dict, vocab: int) -> tuple[list[int], list[int]]:
    ids = row.get("input_ids")
    fix = "Pre-tokenized rows need input_ids (token ids) and optionally labels of the same length."
    if not isinstance(ids, list) or not ids or not all(isinstance(t, int) and 0 <= t < vocab for t in ids):
        raise RowError("input_ids", f"must be a non-empty list of token ids below {vocab}", fix)
    labels = row.get("labels")
    if labels is None:
        return ids, list(ids)
    if not isinstance(labels, list) or len(labels) != len(ids):
        raise RowError("labels", f"must be a list as long as input_ids ({len(ids)})", fix)
    if not all(isinstance(t, int) and (t == IGNORE or 0 <= t < vocab) for t in labels):
        raise RowError("labels", f"must hold token ids or {IGNORE}", fix)
    return ids, labels


def _fit_length(out, ids, labels, index, key, cfg, split: bool) -> None:
    max_len, data = cfg.data.sequence_len, cfg.data
    if len(ids) > max_len and split:
        for start in range(0, len(ids), max_len):
            _emit(out, ids[start:start + max_len], labels[start:start + max_len], "chunk", data.min_sample_len)
    elif len(ids) > max_len and data.excess_length_strategy == "raise":
        raise AxoError(f"{key} row {index}: {len(ids)} tokens, more than sequence_len={max_len}. Fix: raise "
                       "`sequence_len`, or set `excess_length_strategy` to drop or truncate.")
    elif len(ids) > max_len and data.excess_length_strategy == "truncate":
        _emit(out, ids[:max_len], labels[:max_len], "truncated", data.min_sample_len)
    elif len(ids) > max_len:
        _emit(out, [], [], "too_long", 0)
    else:
        _emit(out, ids, labels, "ok", data.min_sample_len)


def _emit(out, ids, labels, status, min_len) -> None:
    if status in KEPT and len(ids) < min_len:
        ids, labels, status = [], [], "too_short"
    out["input_ids"].append(ids)
    out["labels"].append(labels)
    out["length"].append(len(ids))
    out["status"].append(status)


def _bad_row(out, err: RowError, index: int, key: str, cfg: Config) -> None:
    if not cfg.data.skip_bad_rows:
        raise AxoError(f"{key} row {index}: field {err.field!r} {err.problem}. {err.fix}")
    _emit(out, [], [], "bad", 0)


def _rows(batch: dict):
    names = list(batch)
    return (dict(zip(names, values)) for values in zip(*batch.values()))


def _empty() -> dict:
    return {c: [] for c in COLUMNS}
