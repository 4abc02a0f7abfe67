"""One dataset entry -> the method's rows, with every row's fate recorded: kept, truncated, cut
into chunks, or dropped (too long, too short, prompt too long, malformed), so statistics and errors
can name them. The policies here are the same for every method; what differs is the row kind, which
turns raw rows into the method's columns and says how long each row is.

A row kind (one per method, named in axo.methods: `rows`) has:
    columns(raw) -> list[str]                the columns it writes (raises AxoError for missing inputs)
    encode(rows) -> [dict | RowError]        per raw row: its columns plus `length` (the longest sequence
                                             it becomes) and its STATS, or why it cannot be read
    truncate(row, limit) -> dict | None      the row cut to `limit` tokens, or None when it cannot be
    split(row, limit) -> [dict] | None       long rows cut into chunks instead (completion), else None
    prompt(text) -> (str, add_special_tokens)  how `axo inference` shows the model a prompt
    STATS: tuple[str, ...]                   per-row counts `preprocess` reports: `trained` (tokens the
                                             loss reads; a row with none is dropped), `prompt_len`
                                             (max_prompt_len reads it), ...
    KEEP_LENGTH: bool                        `length` stays a column (packing reads it)

Rows travel pickled through the policy pass, so a dropped row is an empty value of one type whatever
the method's columns are; the kept ones are unpacked into those columns afterwards.
"""

import pickle

from axo.config import Config
from axo.data.formats import get_format
from axo.data.formats.base import Context, RowError
from axo.data.scratch import Scratch
from axo.data.tokenize import IGNORE, encode
from axo.errors import AxoError

KEPT = ("ok", "truncated", "chunk")
DROPPED = {"too_long": "dropped_too_long", "too_short": "dropped_too_short", "long_prompt": "dropped_long_prompt",
           "untrained": "dropped_untrained", "bad": "skipped_bad"}


def process_rows(raw, kind, cfg: Config, scratch: Scratch | None = None) -> tuple[object, dict]:
    """(the kept rows in the kind's columns, the entry's statistics). `scratch`: where datasets writes
    each step's output (data/scratch.py); without one, steps on rows in memory stay in memory."""
    columns = kind.columns(raw)
    fates = row_fates(raw, kind, cfg, scratch)
    stats = statistics(kind.ctx.key, kind.ctx.ds.path, len(raw), fates, kind.STATS)
    kept = fates.filter(lambda status: status in KEPT, input_columns="status",
                        cache_file_name=scratch.file("kept") if scratch else None)
    rows = kept.map(_unpack, batched=True, remove_columns=kept.column_names, desc=f"Unpacking {kind.ctx.key}",
                    fn_kwargs={"columns": columns, "keep_length": kind.KEEP_LENGTH},
                    cache_file_name=scratch.file("rows") if scratch else None)
    return rows, stats


def row_fates(raw, kind, cfg: Config, scratch: Scratch | None = None):
    """Per output row: the row pickled (empty when dropped), its `status`, `length` and STATS."""
    from datasets.fingerprint import generate_random_fingerprint

    return raw.map(
        _batch, batched=True, with_indices=True, remove_columns=raw.column_names,
        num_proc=cfg.data.dataset_processes, desc=f"Preparing {kind.ctx.key}",
        fn_kwargs={"kind": kind, "key": f"`{kind.ctx.key}` ({kind.ctx.ds.path})", "cfg": cfg},
        # datasets' own fingerprint of these arguments would pickle the whole tokenizer (seconds for a 150k
        # vocabulary) and still miss what the rows depend on; axo's cache key names all of it, and every
        # later step's fingerprint derives from this one
        new_fingerprint=scratch.fingerprint(raw._fingerprint, kind.ctx.key, type(kind).__name__) if scratch
        else generate_random_fingerprint(),
        cache_file_name=scratch.file("fates") if scratch else None,
        load_from_cache_file=False,
    )


def _batch(batch, indices, kind, key, cfg):
    names = list(batch)
    rows = [dict(zip(names, values)) for values in zip(*batch.values())]
    out = {c: [] for c in ("row", "status", "length", *kind.STATS)}
    cap = _character_cap(kind, cfg)
    oversized = {i for i, row in enumerate(rows) if cap and _longer_than(row, cap)}
    encoded = iter(kind.encode([row for i, row in enumerate(rows) if i not in oversized]))
    for i, index in enumerate(indices):
        if i in oversized:  # decided without tokenizing it: a huge row would take minutes and gigabytes
            if cfg.data.excess_length_strategy == "raise":
                raise AxoError(f"{key} row {index + 1}: more than {cap} characters, more than sequence_len="
                               f"{cfg.data.sequence_len} tokens can hold. Fix: raise `sequence_len`, or set "
                               "`excess_length_strategy: drop`.")
            _emit(out, None, "too_long")
            continue
        item = next(encoded)
        if isinstance(item, RowError):
            if not cfg.data.skip_bad_rows:
                raise AxoError(f"{key} row {index + 1}: field {item.field!r} {item.problem}. {item.fix}")
            _emit(out, None, "bad")
        else:
            _fit(out, item, index, key, kind, cfg)
    return out


# No tokenizer's token spans more characters: a row with more than sequence_len x this cannot fit.
MAX_CHARACTERS_PER_TOKEN = 64


def _character_cap(kind, cfg: Config) -> int | None:
    """The size above which a row is too long before tokenizing, where that decides its fate: rows
    that are dropped or refused when too long (truncated and split rows are tokenized to be cut)."""
    splits = getattr(getattr(kind, "fmt", None), "SPLIT_LONG", False)
    if splits or cfg.data.excess_length_strategy == "truncate":
        return None
    return cfg.data.sequence_len * MAX_CHARACTERS_PER_TOKEN


def _longer_than(value, cap: int) -> bool:
    """Whether the text in a raw row (strings in nested lists and dicts) exceeds `cap` characters,
    stopping as soon as it does."""
    stack, total = [value], 0
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
            if total > cap:
                return True
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


def _fit(out, item: dict, index: int, key: str, kind, cfg: Config) -> None:
    """The length policies: max_prompt_len, then sequence_len (excess_length_strategy, or chunks
    for formats that split), then min_sample_len."""
    limit, data = cfg.data.sequence_len, cfg.data
    prompt_limit = cfg.rl.max_prompt_len
    if prompt_limit and item.get("prompt_len", 0) > prompt_limit:
        _emit(out, None, "long_prompt")
    elif item["length"] <= limit:
        _emit(out, item, "ok", data.min_sample_len)
    elif (chunks := kind.split(item, limit)) is not None:
        for chunk in chunks:
            _emit(out, chunk, "chunk", data.min_sample_len)
    elif data.excess_length_strategy == "raise":
        raise AxoError(f"{key} row {index + 1}: {item['length']} tokens, more than sequence_len={limit}. Fix: raise "
                       "`sequence_len`, or set `excess_length_strategy` to drop or truncate.")
    elif data.excess_length_strategy == "truncate" and (cut_row := kind.truncate(item, limit)) is not None:
        _emit(out, cut_row, "truncated", data.min_sample_len)
    else:
        _emit(out, None, "too_long")


def _emit(out, item: dict | None, status: str, min_len: int = 0) -> None:
    """Record one output row. A kept row shorter than min_sample_len, or with no token the loss reads
    (an answer truncated away, a chat without an assistant turn), is dropped: a step of such rows would
    divide a zero loss by zero tokens."""
    if item is not None and item["length"] < min_len:
        item, status = None, "too_short"
    elif item is not None and item.get("trained", 1) == 0:
        item, status = None, "untrained"
    out["status"].append(status)
    out["row"].append(b"" if item is None else pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL))
    for column in out:
        if column not in ("row", "status"):
            out[column].append(0 if item is None else item[column])


def _unpack(batch, columns, keep_length: bool):
    items = [pickle.loads(b) for b in batch["row"]]
    out = {c: [item.get(c) for item in items] for c in columns}
    if keep_length:
        out["length"] = batch["length"]
    return out


def statistics(key: str, path: str, rows_in: int, fates, stat_columns: tuple[str, ...]) -> dict:
    """Per dataset entry: what came in, what went out and why, and the lengths of what was kept."""
    status = fates["status"]
    kept = [i for i, s in enumerate(status) if s in KEPT]
    stats = {"dataset": key, "path": path, "rows_in": rows_in, "rows_out": len(kept),
             "truncated": status.count("truncated"), "chunks": status.count("chunk"),
             **{name: status.count(s) for s, name in DROPPED.items()}}

    def of_kept(column: str) -> list[int]:
        values = fates[column]
        return sorted(values[i] for i in kept)

    lengths = of_kept("length")
    stats["tokens"] = sum(lengths)
    for column in stat_columns:
        if column in TOTALS:
            stats[TOTALS[column]] = sum(of_kept(column))
    stats.update(_percentiles("len", lengths))
    for column in stat_columns:
        if column not in TOTALS:
            stats.update(_percentiles(column, of_kept(column)))
    return stats


# Per-row counts reported as totals over the kept rows (the other STATS as length percentiles).
TOTALS = {"trained": "trained_tokens", "n_images": "images", "n_audios": "audio_clips"}


def _percentiles(name: str, values: list[int]) -> dict:
    def at(q: float) -> int:
        return values[min(len(values) - 1, int(q * len(values)))] if values else 0

    return {f"{name}_p50": at(0.5), f"{name}_p95": at(0.95), f"{name}_max": at(1.0)}


def trained_count(labels) -> int:
    return sum(1 for t in labels if t != IGNORE)


class RowKind:
    """What row kinds share: rows read one at a time (`read`), and no way to cut or split them
    unless a kind says how."""

    STATS: tuple[str, ...] = ()
    KEEP_LENGTH = False

    def __init__(self, cfg: Config, ctx: Context):
        self.cfg, self.ctx = cfg, ctx

    def encode(self, rows: list[dict]) -> list:
        out = []
        for row in rows:
            try:
                out.append(self.read(row))
            except RowError as err:
                out.append(err)
        return out

    def read(self, row: dict) -> dict:
        raise NotImplementedError

    def truncate(self, item: dict, limit: int) -> dict | None:
        return None

    def split(self, item: dict, limit: int) -> list[dict] | None:
        return None


class TokenRows(RowKind):
    """Base of the kinds whose rows are input_ids and labels (SFT, process reward models)."""

    STATS = ("trained",)
    KEEP_LENGTH = True

    def columns(self, raw) -> list[str]:
        return ["input_ids", "labels"]

    def truncate(self, item: dict, limit: int) -> dict | None:
        return self.row(item["input_ids"][:limit], item["labels"][:limit])

    def row(self, ids: list[int], labels: list[int]) -> dict:
        return {"input_ids": ids, "labels": labels, "length": len(ids), "trained": trained_count(labels)}


class TextRows(TokenRows):
    """SFT formats (alpaca, chat_template, completion, input_output, a mapping): segments of text
    tokenized once, each token trained when its segment is."""

    def __init__(self, cfg: Config, ctx: Context):
        super().__init__(cfg, ctx)
        self.fmt = get_format(ctx.ds)

    def columns(self, raw) -> list[str]:
        missing = [c for c in self.fmt.columns(self.ctx) if c not in raw.column_names]
        if missing:
            raise AxoError(f"`{self.ctx.key}` ({self.ctx.ds.path}): type {self.ctx.ds.type_name!r} needs column(s) "
                           f"{missing}, but the data has {raw.column_names}. Rename the columns or change the field "
                           "options.")
        return super().columns(raw)

    def encode(self, rows: list[dict]) -> list:
        parsed = []
        for row in rows:
            try:
                parsed.append(self.fmt.segments(row, self.ctx))
            except RowError as err:
                parsed.append(err)
        good = [p for p in parsed if not isinstance(p, RowError)]
        encoded = iter(encode(self.ctx.tokenizer, good, self.fmt.ADD_SPECIAL_TOKENS, self.cfg.data.train_on_inputs))
        return [p if isinstance(p, RowError) else self.row(*next(encoded)) for p in parsed]

    def split(self, item: dict, limit: int) -> list[dict] | None:
        if not self.fmt.SPLIT_LONG:
            return None
        ids, labels = item["input_ids"], item["labels"]
        return [self.row(ids[i:i + limit], labels[i:i + limit]) for i in range(0, len(ids), limit)]

    def prompt(self, text: str) -> tuple[str, bool]:
        return self.fmt.prompt(text, self.ctx), self.fmt.ADD_SPECIAL_TOKENS


class PretokenizedRows(TokenRows):
    """Rows that already hold input_ids (and optionally labels), checked against the vocabulary."""

    def columns(self, raw) -> list[str]:
        if "input_ids" not in raw.column_names:
            raise AxoError(f"`{self.ctx.key}.type` is not set and the rows of {self.ctx.ds.path!r} have no "
                           f"input_ids (columns: {raw.column_names}). Fix: set `type:` to alpaca, chat_template, "
                           "completion or input_output.")
        return super().columns(raw)

    def read(self, row: dict) -> dict:
        return self.row(*_check_tokens(row, len(self.ctx.tokenizer)))

    def prompt(self, text: str) -> tuple[str, bool]:
        return text, True


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


def sft_rows(cfg: Config, ctx: Context):
    """SFT's row kind for a dataset entry: rows with images or audio for multimodal models, else by `type`."""
    if cfg.model.task == "multimodal_lm":
        from axo.data.media import MediaRows

        return MediaRows(cfg, ctx)
    return PretokenizedRows(cfg, ctx) if ctx.ds.type is None else TextRows(cfg, ctx)


def row_kind(cfg: Config, ctx: Context):
    """The row kind the config's method prepares this dataset entry with (axo.methods: `rows`)."""
    return cfg.method.load("rows")(cfg, ctx)
