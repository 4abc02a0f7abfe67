"""`pretraining_dataset`: raw text streamed, tokenized on the fly and cut into full blocks of
sequence_len tokens, every token trained. Nothing is cached; `max_steps` sets the length."""

from axo.config import Config
from axo.data.sources import load_rows
from axo.errors import AxoError


def stream_pretraining(cfg: Config, tokenizer):
    import datasets

    parts = []
    for i, entry in enumerate(cfg.data.pretraining_dataset):
        key = f"pretraining_dataset[{i}]"
        rows = load_rows(entry, key, streaming=True)
        if rows.column_names is not None and entry.text_column not in rows.column_names:
            raise AxoError(f"`{key}` ({entry.path}): no column {entry.text_column!r} (columns: "
                           f"{rows.column_names}). Fix: set `text_column`.")
        parts.append(rows.select_columns([entry.text_column]).rename_column(entry.text_column, "text")
                     if entry.text_column != "text" else rows.select_columns(["text"]))
    stream = parts[0] if len(parts) == 1 else datasets.interleave_datasets(parts, seed=cfg.train.seed)
    if cfg.data.shuffle_merged_datasets:
        stream = stream.shuffle(seed=cfg.train.seed, buffer_size=10_000)
    return stream.map(_blocks, batched=True, remove_columns=["text"],
                      fn_kwargs={"tokenizer": tokenizer, "block": cfg.data.sequence_len,
                                 "isolate": cfg.data.sample_packing})


def _blocks(batch, tokenizer, block: int, isolate: bool):
    """Documents joined with EOS, cut into blocks; the tail of a batch shorter than a block is
    dropped. With `isolate` (sample_packing), position_ids restart at each document (and at each
    block), so documents in one block do not attend to each other."""
    ids, doc_start = [], []
    for doc in tokenizer(batch["text"], add_special_tokens=True)["input_ids"]:
        ids += doc + [tokenizer.eos_token_id]
        doc_start += [True] + [False] * len(doc)
    starts = range(0, len(ids) - block + 1, block)
    out = {"input_ids": [ids[i:i + block] for i in starts], "length": [block] * len(starts)}
    out["labels"] = [list(b) for b in out["input_ids"]]
    if isolate:
        out["position_ids"] = [_positions(doc_start[i:i + block]) for i in starts]
    return out


def _positions(doc_start: list[bool]) -> list[int]:
    positions, pos = [], 0
    for j, start in enumerate(doc_start):
        pos = 0 if start or j == 0 else pos + 1
        positions.append(pos)
    return positions
