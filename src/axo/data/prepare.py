"""datasets config -> tokenized train (and eval) splits, cached on disk by a fingerprint of
everything that changes the tokens."""

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from axo.config import Config
from axo.config.data import DatasetConfig
from axo.data.formats import get_format
from axo.data.sources import load_rows
from axo.data.tokenize import IGNORE, tokenize_pair
from axo.errors import AxoError

log = logging.getLogger("axo")
CACHE_VERSION = 1  # bump when tokenization code changes what it writes


@dataclass
class Prepared:
    train: object  # datasets.Dataset with input_ids, labels
    eval: object | None
    stats: list[dict] = field(default_factory=list)
    cache_hit: bool = False


def prepare(cfg: Config, tokenizer) -> Prepared:
    import datasets

    cache = _cache_dir(cfg, tokenizer)
    if (cache / "train").exists():
        log.info("Using tokenized data from the cache at %s", cache)
        train = datasets.load_from_disk(str(cache / "train"))
        ev = datasets.load_from_disk(str(cache / "eval")) if (cache / "eval").exists() else None
        stats = json.loads((cache / "stats.json").read_text())
        return Prepared(train, ev, stats, cache_hit=True)

    train, stats = _tokenize_all(cfg.data.datasets, "datasets", cfg, tokenizer)
    ev = None
    if cfg.data.test_datasets:
        ev, eval_stats = _tokenize_all(cfg.data.test_datasets, "test_datasets", cfg, tokenizer)
        stats += eval_stats
    elif cfg.data.val_set_size:
        size = cfg.data.val_set_size
        split = train.train_test_split(test_size=int(size) if size >= 1 else size, seed=cfg.train.seed)
        train, ev = split["train"], split["test"]
    _write_cache(cache, train, ev, stats)
    return Prepared(train, ev, stats)


def _tokenize_all(entries: list[DatasetConfig], list_key: str, cfg: Config, tokenizer):
    import datasets

    parts, stats = [], []
    for i, ds in enumerate(entries):
        key = f"{list_key}[{i}]"
        part = _tokenize_one(load_rows(ds, key), ds, key, cfg, tokenizer)
        stats.append(_stats(key, ds.path, part))
        part = part.filter(lambda row: row["keep"]).remove_columns(["keep"])
        if len(part) == 0:
            raise AxoError(
                f"`{key}` ({ds.path}): no rows left: every row is longer than "
                f"sequence_len={cfg.data.sequence_len}. Raise `sequence_len` or shorten the rows."
            )
        parts.append(part)
    return datasets.concatenate_datasets(parts), stats


def _tokenize_one(rows, ds: DatasetConfig, key: str, cfg: Config, tokenizer):
    fmt = get_format(ds.type)
    missing = [c for c in fmt.REQUIRED if c not in rows.column_names]
    if missing:
        raise AxoError(
            f"`{key}` ({ds.path}): type {ds.type!r} needs column(s) {missing}, "
            f"but the data has {rows.column_names}. Rename the columns or pick another `type`."
        )
    max_len = cfg.data.sequence_len

    def encode(row, index):
        bad = [c for c in fmt.REQUIRED if not isinstance(row[c], str)]
        if bad:
            raise AxoError(f"`{key}` ({ds.path}) row {index}: field {bad[0]!r} must be text, "
                           f"got {row[bad[0]]!r}. Fix or remove that row.")
        out = tokenize_pair(tokenizer, *fmt.split(row), cfg.data.train_on_inputs)
        out["keep"] = len(out["input_ids"]) <= max_len
        return out

    return rows.map(
        encode, with_indices=True, remove_columns=rows.column_names,
        num_proc=cfg.data.dataset_processes, desc=f"Tokenizing {key}",
    )


def _stats(key: str, path: str, part) -> dict:
    lengths = sorted(len(ids) for ids, keep in zip(part["input_ids"], part["keep"]) if keep)
    trained = sum(sum(1 for t in labels if t != IGNORE)
                  for labels, keep in zip(part["labels"], part["keep"]) if keep)
    pct = (lambda q: lengths[min(len(lengths) - 1, int(q * len(lengths)))] if lengths else 0)
    return {
        "dataset": key, "path": path, "rows_in": len(part), "rows_out": len(lengths),
        "dropped_too_long": len(part) - len(lengths), "tokens": sum(lengths),
        "trained_tokens": trained, "len_p50": pct(0.5), "len_p95": pct(0.95),
        "len_max": lengths[-1] if lengths else 0,
    }


def _cache_dir(cfg: Config, tokenizer) -> Path:
    root = Path(cfg.data.dataset_prepared_path or Path(cfg.train.output_dir) / "prepared")
    return root / fingerprint(cfg, tokenizer)


def fingerprint(cfg: Config, tokenizer) -> str:
    """Hash of everything that changes the tokens: data file contents, dataset entries,
    the tokenizer, and the data options."""
    h = hashlib.sha256()
    h.update(json.dumps({
        "version": CACHE_VERSION,
        "data": cfg.data.model_dump(mode="json", exclude={"dataset_prepared_path", "dataset_processes"}),
        "seed": cfg.train.seed,  # the val_set_size split depends on it
        "vocab": sorted(tokenizer.get_vocab().items()),
        "special": tokenizer.special_tokens_map,
        "bos": tokenizer("", add_special_tokens=True)["input_ids"],
    }, sort_keys=True, default=str).encode())
    for entry in cfg.data.datasets + (cfg.data.test_datasets or []):
        _hash_path(h, Path(entry.path).expanduser())
    return h.hexdigest()[:16]


def _hash_path(h, path: Path) -> None:
    if path.is_file():
        files = [path]
    else:  # a folder, or a hub id (nothing local to hash; its name and revision are hashed above)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    for f in files:
        h.update(str(f).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)


def _write_cache(cache: Path, train, ev, stats) -> None:
    """Write next to the final place, then rename: a half-written cache is never read."""
    tmp = cache.with_name(f"{cache.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    train.save_to_disk(str(tmp / "train"))
    if ev is not None:
        ev.save_to_disk(str(tmp / "eval"))
    (tmp / "stats.json").write_text(json.dumps(stats, indent=2))
    try:
        tmp.rename(cache)
    except OSError:  # another process finished first; its copy is as good as ours
        shutil.rmtree(tmp, ignore_errors=True)
