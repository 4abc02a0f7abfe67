"""The one data pipeline every method goes through: load -> the method's row kind (per method and
format) -> length and bad-row policies -> statistics -> mix and shuffle -> split -> deduplicate ->
cache. The result is cached on disk by a fingerprint of everything that changes the rows. In a
multi-process run one process per machine prepares; the others wait for the finished cache."""

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from axo.config import Config
from axo.data.chat import ChatSetup, context, setup_chat
from axo.data.rows import DROPPED, process_rows, row_kind
from axo.data.scratch import Scratch, scratch
from axo.data.sources import load_rows
from axo.errors import AxoError

log = logging.getLogger("axo")
WAIT_LOG_EVERY = 60.0


@dataclass
class Prepared:
    train: object  # datasets.Dataset (or IterableDataset when streaming) of the method's rows
    eval: object | None
    stats: list[dict] = field(default_factory=list)
    cache_hit: bool = False


def prepare(cfg: Config, tokenizer, chat: ChatSetup | None = None, processor=None) -> Prepared:
    """The method's train (and eval) rows. `chat` is the run's chat setup (resolved here when not
    given); `processor` is an image-text model's."""
    chat = chat or setup_chat(cfg, tokenizer, processor)
    if cfg.data.pretraining_dataset:
        from axo.data.pretraining import stream_pretraining

        ev = _cached(cfg, tokenizer, chat, processor, train=False) if cfg.data.test_datasets else None
        return Prepared(stream_pretraining(cfg, tokenizer), ev.eval if ev else None, ev.stats if ev else [])
    return _cached(cfg, tokenizer, chat, processor)


def split_eval(rows, cfg: Config, work: Scratch):
    """(train, eval): `val_set_size` rows (a fraction below 1, a count from 1) held out, seeded."""
    size = cfg.data.val_set_size
    parts = rows.train_test_split(test_size=int(size) if size >= 1 else size, seed=cfg.train.seed,
                                  train_indices_cache_file_name=work.file("train-order"),
                                  test_indices_cache_file_name=work.file("eval-order"))
    return parts["train"], parts["test"]


def _cached(cfg: Config, tokenizer, chat: ChatSetup, processor, train: bool = True) -> Prepared:
    cache = _cache_dir(cfg, tokenizer, chat, processor)
    hit = (cache / "stats.json").exists()
    built = not hit and _is_local_main()
    if built:
        _build_into(cache, lambda work: _build(cfg, tokenizer, chat, processor, train, work))
    elif not hit:
        _wait_for(cache)
    # One line per process, whatever the timing: exactly one process per machine says "tokenized".
    log.info("Local rank %s %s %s", _local_rank(),
             "tokenized the data into" if built else "read the tokenized data from", cache)
    return _load(cache, hit)


def _build_into(cache: Path, build) -> None:
    failed = cache.with_name(cache.name + ".failed")
    failed.unlink(missing_ok=True)
    try:
        with scratch(cache, key=cache.name) as work:  # (removed once the rows are saved, or on failure)
            splits, stats = build(work)
            _write_cache(cache, splits, stats)
    except BaseException as err:
        cache.parent.mkdir(parents=True, exist_ok=True)
        failed.write_text(f"{type(err).__name__}: {err}")  # tells waiting processes to stop
        raise


def _build(cfg: Config, tokenizer, chat: ChatSetup, processor, train: bool,
           work: Scratch) -> tuple[dict, list[dict]]:
    stats, splits = [], {}
    if train:
        splits["train"], stats = _prepare_list("datasets", cfg, tokenizer, chat, processor, work)
        if cfg.data.shuffle_merged_datasets and not cfg.data.curriculum_sampling:
            splits["train"] = splits["train"].shuffle(seed=cfg.train.seed, indices_cache_file_name=work.file(
                "shuffled-order")).flatten_indices(cache_file_name=work.file("shuffled"))
    if cfg.data.test_datasets:
        splits["eval"], eval_stats = _prepare_list("test_datasets", cfg, tokenizer, chat, processor, work)
        stats += eval_stats
    elif train and cfg.data.val_set_size:
        splits["train"], splits["eval"] = split_eval(splits["train"], cfg, work)
    if cfg.data.dataset_exact_deduplication:
        splits = _deduplicate(splits, stats, work)
    for name, split in splits.items():
        if len(split) == 0:
            raise AxoError(f"the {name} split is empty after filtering and deduplication.")
    if cfg.data.push_dataset_to_hub:
        import datasets

        datasets.DatasetDict(splits).push_to_hub(cfg.data.push_dataset_to_hub, private=True)
        log.info("Pushed the prepared data to the hub dataset %s (private)", cfg.data.push_dataset_to_hub)
    return splits, stats


def _prepare_list(list_key: str, cfg: Config, tokenizer, chat: ChatSetup, processor, work: Scratch):
    import datasets

    parts, stats = [], []
    for i, ds in enumerate(getattr(cfg.data, list_key)):
        key = f"{list_key}[{i}]"
        kind = row_kind(cfg, context(cfg, chat, list_key, i, tokenizer, processor))
        raw = load_rows(ds, key, cache_dir=work.downloads)
        if ds.shards:  # one shard of the entry's rows, shuffled first as Axolotl does
            raw = raw.shuffle(seed=cfg.train.seed, indices_cache_file_name=work.file("shard-order")).shard(
                ds.shards, ds.shards_idx, indices_cache_file_name=work.file("shard"))
        part, stat = process_rows(raw, kind, cfg, work)
        stats.append(stat)
        if len(part) == 0:
            note = getattr(kind, "LENGTH_NOTE", "")
            raise AxoError(f"`{key}` ({ds.path}): no rows left after filtering: {_drop_summary(stat)}. Fix the data "
                           f"or the length settings{note}.")
        parts.append(part)
    return datasets.concatenate_datasets(parts), stats


def _drop_summary(stat: dict) -> str:
    reasons = {"dropped_too_long": "too long", "dropped_too_short": "too short",
               "dropped_long_prompt": "over max_prompt_len", "dropped_untrained": "with no trained token",
               "skipped_bad": "malformed"}
    dropped = [f"{stat[k]} {reasons[k]}" for k in DROPPED.values() if stat[k]]
    return ", ".join(dropped or ["none dropped"]) + f" of {stat['rows_in']}"


def _deduplicate(splits: dict, stats: list[dict], work: Scratch) -> dict:
    """Exact duplicates (the same prepared row) leave the training split, and eval rows that also
    appear in training leave the eval split, so eval never scores memorised rows."""
    columns = [c for c in splits["train"].column_names if c != "length"]

    def key(*values):
        return hashlib.blake2b(repr(values).encode(), digest_size=16).digest()

    seen: set = set()

    def first_time(*values):
        k = key(*values)
        if k in seen:
            return False
        seen.add(k)
        return True

    out = dict(splits)
    before = len(splits["train"])
    out["train"] = splits["train"].filter(first_time, input_columns=columns, cache_file_name=work.file("unique"))
    train_keys = set(seen)
    removed = {"train": before - len(out["train"])}
    if "eval" in splits:
        before = len(splits["eval"])
        out["eval"] = splits["eval"].filter(lambda *values: key(*values) not in train_keys, input_columns=columns,
                                            cache_file_name=work.file("unique-eval"))
        removed["eval"] = before - len(out["eval"])
    stats.append({"dataset": "deduplication", "removed": removed})
    log.info("Exact deduplication removed %s rows", removed)
    return out


def _cache_dir(cfg: Config, tokenizer, chat: ChatSetup, processor) -> Path:
    root = Path(cfg.data.dataset_prepared_path or Path(cfg.train.output_dir) / "prepared")
    return root / fingerprint(cfg, tokenizer, chat, processor)


def fingerprint(cfg: Config, tokenizer, chat: ChatSetup, processor=None) -> str:
    """Hash of everything that changes the rows: data file contents, dataset entries and data
    options, the method and its row keys, the tokenizer (its whole definition), each dataset's chat
    template and end-of-turn tokens, the code of row transforms, the processor, and the code that
    prepares rows (axo's data package and the libraries that tokenize and render)."""
    entries = (cfg.data.datasets or []) + (cfg.data.test_datasets or [])
    trl = cfg.rl.trl
    h = hashlib.sha256()
    h.update(json.dumps({
        "code": _code_version(),
        "data": cfg.data.model_dump(mode="json", exclude={"dataset_prepared_path", "dataset_processes"}),
        "method": cfg.method.name, "task": cfg.model.task, "max_prompt_len": cfg.rl.max_prompt_len,
        "max_completion_length": trl.max_completion_length if trl else None,
        "seed": cfg.train.seed,  # shuffling and the val_set_size split depend on it
        "tokenizer": _tokenizer_identity(tokenizer),
        "chat": [[c.template, c.eot] for c in chat.datasets + chat.test_datasets],
        "processor": processor.to_dict() if processor is not None else None,
    }, sort_keys=True, default=str).encode())
    for entry in entries:
        _hash_path(h, entry.path)
        if entry.is_transform:
            _hash_path(h, _module_file(entry.type))
    return h.hexdigest()[:16]


def _tokenizer_identity(tokenizer) -> dict:
    """What decides the ids a tokenizer gives: for a fast tokenizer its whole definition (vocabulary,
    merges, normalizer, pre-tokenizer, added tokens with their flags, post-processor), less the
    truncation and padding state that calling it leaves behind; the Python-side special tokens and
    whether it adds BOS/EOS (read off an encoding)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # tokenizers writes version, truncation and padding first, then what decides the ids: hash from there
        # (a JSON round trip of a 150k vocabulary costs a second; should the order change, a cache is missed)
        definition = backend.to_str()
        model = hashlib.sha256(definition[max(definition.find('"added_tokens"'), 0):].encode()).hexdigest()
    else:  # a slow or mistral-common tokenizer: its vocabulary
        model = hashlib.sha256(json.dumps(sorted(tokenizer.get_vocab().items())).encode()).hexdigest()
    return {"class": type(tokenizer).__name__, "model": model, "special": tokenizer.special_tokens_map,
            "added": len(tokenizer), "ends": tokenizer("a", add_special_tokens=True)["input_ids"]}


def _code_version() -> dict:
    """axo's row-preparing code (axo.data, the method table that picks row kinds, the dataset entry's
    fields) and the versions of the libraries that tokenize and render templates: a new release of
    either may write other rows."""
    from importlib import metadata

    package = Path(__file__).parents[1]
    h = hashlib.sha256()
    for f in [*sorted((package / "data").rglob("*.py")), package / "methods.py", package / "config" / "data.py"]:
        h.update(f.read_bytes())
    versions = {}
    for name in ("transformers", "tokenizers", "jinja2", "trl"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"axo": h.hexdigest()[:16], **versions}


def _module_file(dotted: str) -> str:
    """The source file of a transform, so editing it invalidates the cache."""
    import inspect

    from axo.config.user_code import resolve

    return inspect.getsourcefile(resolve(dotted)) or ""


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
