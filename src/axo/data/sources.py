"""Raw rows from a local file or folder, an fsspec URI (s3://, gs://, https://, file://), or the
hub, as a `datasets.Dataset` (or an `IterableDataset` when streaming)."""

from pathlib import Path, PurePosixPath

from axo.errors import AxoError

EXTENSIONS = {
    ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv",
    ".arrow": "arrow", ".txt": "text",
}


def load_rows(ds, key: str, streaming: bool = False, cache_dir: str | None = None):
    """`ds` is a dataset entry (path, name, split, data_files, ds_type, revision); `key` is where
    it sits in the config (`datasets[0]`), for error messages. `cache_dir`: where datasets converts
    local files and URIs (a preparation's own folder, data/scratch.py); hub datasets stay in datasets'
    cache, where they were downloaded (and where an offline machine finds them)."""
    import datasets

    path = Path(ds.path).expanduser()
    if path.is_file():
        _check_text_file(path, _file_type(ds, path, key), key)
    try:
        if "://" in ds.path:
            files = ds.data_files or ds.path
            first = files if isinstance(files, str) else files[0]
            return datasets.load_dataset(_file_type(ds, PurePosixPath(first), key), data_files=files,
                                         split="train", streaming=streaming, cache_dir=cache_dir)
        if path.is_file():
            return datasets.load_dataset(_file_type(ds, path, key), data_files=str(path), split="train",
                                         streaming=streaming, cache_dir=cache_dir)
        if path.is_dir():
            if (path / "dataset_info.json").exists() or (path / "state.json").exists():
                saved = datasets.load_from_disk(str(path))
                return saved.to_iterable_dataset() if streaming else saved
            files = _local_files(path, ds.data_files)
            return datasets.load_dataset(_file_type(ds, Path(files[0]), key), data_files=files,
                                         split="train", streaming=streaming, cache_dir=cache_dir)
        return datasets.load_dataset(ds.path, name=ds.name, split=ds.split, revision=ds.revision,
                                     data_files=ds.data_files, streaming=streaming)
    except AxoError:
        raise
    except Exception as err:  # datasets raises many types for "not found / offline"
        if path.is_file():
            raise AxoError(f"`{key}.path`: could not read {str(path)!r} as {_file_type(ds, path, key)}: "
                           f"{_diagnose(path, _file_type(ds, path, key)) or f'{type(err).__name__}: {err}'}. "
                           "Fix: correct that line (rows are counted from 1, as an editor counts lines), or "
                           "set `ds_type` if the extension is wrong.") from None
        raise AxoError(
            f"`{key}.path`: could not load {ds.path!r}: {type(err).__name__}: {err}\n"
            "Fix: point `path` at a local file or folder, or check the hub id or URI and your "
            "network (HF_HUB_OFFLINE=1 / HF_DATASETS_OFFLINE=1 mean only cached data loads)."
        ) from None


def _local_files(folder: Path, data_files) -> list[str]:
    patterns = [data_files] if isinstance(data_files, str) else (data_files or ["*"])
    files = sorted(str(f) for p in patterns for f in folder.glob(p) if f.suffix in EXTENSIONS)
    if not files:
        raise AxoError(f"no data files ({', '.join(EXTENSIONS)}) match {patterns} in {folder}")
    return files


def _file_type(ds, path, key: str) -> str:
    if ds.ds_type:
        return ds.ds_type
    if path.suffix in EXTENSIONS:
        return EXTENSIONS[path.suffix]
    raise AxoError(
        f"`{key}`: cannot tell the format of {str(path)!r} from its extension; "
        f"set `ds_type` to one of json, parquet, csv, arrow, text"
    )


TEXT_TYPES = ("json", "csv", "text")
NEWLINE = b"\n"


def _check_text_file(path: Path, file_type: str, key: str) -> None:
    """Text formats must be UTF-8: a bad byte otherwise surfaces much later, deep in pyarrow,
    without a line number. Reads the file once, in blocks."""
    if file_type not in TEXT_TYPES:
        return
    if path.stat().st_size == 0:
        raise AxoError(f"`{key}.path`: {str(path)!r} is empty. Fix: point `path` at the file that holds the rows.")
    import codecs

    decoder, line, block_size = codecs.getincrementaldecoder("utf-8")(), 1, 1 << 20
    with path.open("rb") as f:
        while block := f.read(block_size):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as err:
                before = block[:err.start]
                at, column = line + before.count(NEWLINE), err.start - before.rfind(NEWLINE)
                raise AxoError(f"`{key}.path`: {str(path)!r} line {at}, column {column}: not "
                               f"UTF-8 (byte 0x{block[err.start]:02x}). Fix: save the file as UTF-8, or remove "
                               "that line.") from None
            line += block.count(NEWLINE)


def _diagnose(path: Path, file_type: str) -> str | None:
    """The first line that does not parse, for a JSON file datasets could not read."""
    import json

    if file_type != "json":
        return None
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json" and text.lstrip().startswith(("[", "{")):
        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            return f"line {err.lineno}, column {err.colno}: not valid JSON ({err.msg})"
        return None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                json.loads(line)
            except json.JSONDecodeError as err:
                return f"line {number}: not valid JSON ({err.msg} at column {err.colno})"
    return None
