"""datasets config -> tokenized train (and eval) splits, cached on disk by a fingerprint of
everything that changes the tokens. In a multi-process run one process per machine prepares;
the others wait for the finished cache."""

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from axo.config import Config
from axo.config.data import DatasetConfig
from axo.data.rows import KEPT, format_context, tokenize_rows
from axo.data.sources import load_rows
from axo.data.tokenize import IGNORE
from axo.errors import AxoError

log = logging.getLogger("axo")
CACHE_VERSION = 2  # bump when tokenization code changes what it writes
WAIT_LOG_EVERY = 60.0


@dataclass
class Prepared:
    train: object  # datasets.Dataset (or IterableDataset when streaming) with input_ids, labels, length
    eval: object | None
    stats: list[dict] = field(default_factory=list)
    cache_hit: bool = False


def prepare(cfg: Config, tokenizer) -> Prepared:
    if cfg.data.pretraining_dataset:
        from axo.data.pretraining import stream_pretraining

        ev = prepare_tokenized(cfg, tokenizer, train=False) if cfg.data.test_datasets else None
        return Prepared(stream_pretraining(cfg, tokenizer), ev.eval if ev else None, ev.stats if ev else [])
    return prepare_tokenized(cfg, tokenizer)


def split_eval(rows, cfg: Config):
    """(train, eval): `val_set_size` rows (a fraction below 1, a count from 1) held out, seeded."""
    size = cfg.data.val_set_size
    parts = rows.train_test_split(test_size=int(size) if size >= 1 else size, seed=cfg.train.seed)
    return parts["train"], parts["test"]


def prepare_raw(cfg: Config) -> Prepared:
    """Rows as they are, for image-text-to-text models: their processor tokenizes at batching time."""
    import datasets

    def load_all(entries, list_key):
        parts = [load_rows(ds, f"{list_key}[{i}]") for i, ds in enumerate(entries)]
        stats = [{"dataset": f"{list_key}[{i}]", "path": ds.path, "rows_in": len(p), "rows_out": len(p)}
                 for i, (ds, p) in enumerate(zip(entries, parts))]
        return datasets.concatenate_datasets(parts), stats

    train, stats = load_all(cfg.data.datasets, "datasets")
    ev = None
    if cfg.data.test_datasets:
        ev, eval_stats = load_all(cfg.data.test_datasets, "test_datasets")
        stats += eval_stats
    elif cfg.data.val_set_size:
        train, ev = split_eval(train, cfg)
    return Prepared(train, ev, stats)


def prepare_tokenized(cfg: Config, tokenizer, train: bool = True) -> Prepared:
    cache = _cache_dir(cfg, tokenizer)
    hit = (cache / "stats.json").exists()
    built = not hit and _is_local_main()
    if built:
        _build_into(cache, cfg, tokenizer, train)
    elif not hit:
        _wait_for(cache)
    # One line per process, whatever the timing: exactly one process per machine says "tokenized".
    log.info("Local rank %s %s %s", _local_rank(),
             "tokenized the data into" if built else "read the tokenized data from", cache)
    return _load(cache, hit)


def _build_into(cache: Path, cfg: Config, tokenizer, train: bool) -> None:
    failed = cache.with_name(cache.name + ".failed")
    failed.unlink(missing_ok=True)
    try:
        splits, stats = _build(cfg, tokenizer, train)
        _write_cache(cache, splits, stats)
    except BaseException as err:
        cache.parent.mkdir(parents=True, exist_ok=True)
        failed.write_text(f"{type(err).__name__}: {err}")  # tells waiting processes to stop
        raise


def _build(cfg: Config, tokenizer, train: bool) -> tuple[dict, list[dict]]:
    stats, splits = [], {}
    if train:
        splits["train"], stats = _tokenize_all(cfg.data.datasets, "datasets", cfg, tokenizer)
        if cfg.data.shuffle_merged_datasets:
            splits["train"] = splits["train"].shuffle(seed=cfg.train.seed).flatten_indices()
    if cfg.data.test_datasets:
        splits["eval"], eval_stats = _tokenize_all(cfg.data.test_datasets, "test_datasets", cfg, tokenizer)
        stats += eval_stats
    elif train and cfg.data.val_set_size:
        splits["train"], splits["eval"] = split_eval(splits["train"], cfg)
    if cfg.data.dataset_exact_deduplication:
        splits = _deduplicate(splits, stats)
    for name, split in splits.items():
        if len(split) == 0:
            raise AxoError(f"the {name} split is empty after filtering and deduplication.")
    return splits, stats


def _tokenize_all(entries: list[DatasetConfig], list_key: str, cfg: Config, tokenizer):
    import datasets

    parts, stats = [], []
    for i, ds in enumerate(entries):
        key = f"{list_key}[{i}]"
        rows = load_rows(ds, key)
        part = tokenize_rows(rows, ds, key, cfg, tokenizer)
        stats.append(_stats(key, ds.path, len(rows), part))
        part = part.filter(lambda status: status in KEPT, input_columns="status").remove_columns("status")
        if len(part) == 0:
            raise AxoError(f"`{key}` ({ds.path}): no rows left after filtering: "
                           f"{_drop_summary(stats[-1])}. Fix the data or the length settings.")
        parts.append(part)
    return datasets.concatenate_datasets(parts), stats


def _stats(key: str, path: str, rows_in: int, part) -> dict:
    status = part["status"]
    lengths = sorted(n for n, s in zip(part["length"], status) if s in KEPT)
    trained = sum(sum(1 for t in labels if t != IGNORE) for labels in part["labels"])
    pct = (lambda q: lengths[min(len(lengths) - 1, int(q * len(lengths)))] if lengths else 0)
    count = {s: status.count(s) for s in ("truncated", "chunk", "too_long", "too_short", "bad")}
    return {
        "dataset": key, "path": path, "rows_in": rows_in, "rows_out": len(lengths),
        "truncated": count["truncated"], "chunks": count["chunk"], "dropped_too_long": count["too_long"],
        "dropped_too_short": count["too_short"], "skipped_bad": count["bad"], "tokens": sum(lengths),
        "trained_tokens": trained, "len_p50": pct(0.5), "len_p95": pct(0.95), "len_max": lengths[-1] if lengths else 0,
    }


def _drop_summary(stat: dict) -> str:
    return (f"{stat['dropped_too_long']} too long, {stat['dropped_too_short']} too short, "
            f"{stat['skipped_bad']} malformed of {stat['rows_in']}")


def _deduplicate(splits: dict, stats: list[dict]) -> dict:
    """Exact duplicates (same input_ids and labels) leave the training split, and eval rows that
    also appear in training leave the eval split, so eval never scores memorised rows."""
    def key(ids, labels):
        return hashlib.blake2b(repr((ids, labels)).encode(), digest_size=16).digest()

    seen: set = set()

    def first_time(ids, labels):
        k = key(ids, labels)
        if k in seen:
            return False
        seen.add(k)
        return True

    out = dict(splits)
    before = len(splits["train"])
    out["train"] = splits["train"].filter(first_time, input_columns=["input_ids", "labels"])
    train_keys = set(seen)
    removed = {"train": before - len(out["train"])}
    if "eval" in splits:
        before = len(splits["eval"])
        out["eval"] = splits["eval"].filter(lambda i, l: key(i, l) not in train_keys,
                                            input_columns=["input_ids", "labels"])
        removed["eval"] = before - len(out["eval"])
    stats.append({"dataset": "deduplication", "removed": removed})
    log.info("Exact deduplication removed %s rows", removed)
    return out


def _cache_dir(cfg: Config, tokenizer) -> Path:
    root = Path(cfg.data.dataset_prepared_path or Path(cfg.train.output_dir) / "prepared")
    return root / fingerprint(cfg, tokenizer)


def fingerprint(cfg: Config, tokenizer) -> str:
    """Hash of everything that changes the tokens: data file contents, dataset entries and data
    options, the tokenizer (vocabulary, special tokens, chat templates and end-of-turn tokens)."""
    entries = (cfg.data.datasets or []) + (cfg.data.test_datasets or [])
    contexts = [format_context(cfg, ds, tokenizer) for ds in entries]
    h = hashlib.sha256()
    h.update(json.dumps({
        "version": CACHE_VERSION,
        "data": cfg.data.model_dump(mode="json", exclude={"dataset_prepared_path", "dataset_processes"}),
        "seed": cfg.train.seed,  # shuffling and the val_set_size split depend on it
        "vocab": sorted(tokenizer.get_vocab().items()),
        "special": tokenizer.special_tokens_map,
        "bos": tokenizer("", add_special_tokens=True)["input_ids"],
        "templates": [c.template for c in contexts], "eot": [c.eot for c in contexts],
    }, sort_keys=True, default=str).encode())
    for entry in entries:
        _hash_path(h, entry.path)
    return h.hexdigest()[:16]


def _hash_path(h, path: str) -> None:
    local = Path(path).expanduser()
    if local.is_file():
        files = [local]
    else:  # a folder, or a hub id / URI (not read here: its name and revision are hashed above)
        files = sorted(p for p in local.rglob("*") if p.is_file()) if local.is_dir() else []
    for f in files:
        h.update(str(f).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)


def _write_cache(cache: Path, splits: dict, stats: list[dict]) -> None:
    """Write next to the final place, then rename: a half-written cache is never read."""
    tmp = cache.with_name(f"{cache.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    for name, split in splits.items():
        split.save_to_disk(str(tmp / name))
    (tmp / "stats.json").write_text(json.dumps(stats, indent=2))
    try:
        tmp.rename(cache)
    except OSError:  # another machine's process finished first; its copy is as good as ours
        shutil.rmtree(tmp, ignore_errors=True)


def _load(cache: Path, hit: bool) -> Prepared:
    import datasets

    def split(name):
        return datasets.load_from_disk(str(cache / name)) if (cache / name).exists() else None

    stats = json.loads((cache / "stats.json").read_text())
    return Prepared(split("train"), split("eval"), stats, cache_hit=hit)


def _local_rank() -> str:
    return os.environ.get("LOCAL_RANK", "0")


def _is_local_main() -> bool:
    return _local_rank() == "0"


def _wait_for(cache: Path, poll: float = 1.0) -> None:
    """Poll the file system rather than block in a collective: preparing a large dataset can take
    longer than any collective timeout."""
    failed = cache.with_name(cache.name + ".failed")
    start = last_log = time.time()
    log.info("Waiting for local rank 0 to prepare the data into %s", cache)
    while not (cache / "stats.json").exists():
        if failed.exists() and failed.stat().st_mtime >= start - 1:
            raise AxoError(f"local rank 0 failed to prepare the data: {failed.read_text()}")
        if time.time() - last_log > WAIT_LOG_EVERY:
            log.info("Still waiting for the data (%.0f s)", time.time() - start)
            last_log = time.time()
        time.sleep(poll)
