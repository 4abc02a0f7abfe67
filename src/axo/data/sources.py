"""Raw rows from a local file or folder, an fsspec URI (s3://, gs://, https://, file://), or the
hub, as a `datasets.Dataset` (or an `IterableDataset` when streaming)."""

from pathlib import Path, PurePosixPath

from axo.errors import AxoError

EXTENSIONS = {
    ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv",
    ".arrow": "arrow", ".txt": "text",
}


def load_rows(ds, key: str, streaming: bool = False):
    """`ds` is a dataset entry (path, name, split, data_files, ds_type, revision); `key` is where
    it sits in the config (`datasets[0]`), for error messages."""
    import datasets

    path = Path(ds.path).expanduser()
    try:
        if "://" in ds.path:
            files = ds.data_files or ds.path
            first = files if isinstance(files, str) else files[0]
            return datasets.load_dataset(_file_type(ds, PurePosixPath(first), key), data_files=files,
                                         split="train", streaming=streaming)
        if path.is_file():
            return datasets.load_dataset(_file_type(ds, path, key), data_files=str(path), split="train",
                                         streaming=streaming)
        if path.is_dir():
            if (path / "dataset_info.json").exists() or (path / "state.json").exists():
                saved = datasets.load_from_disk(str(path))
                return saved.to_iterable_dataset() if streaming else saved
            files = _local_files(path, ds.data_files)
            return datasets.load_dataset(_file_type(ds, Path(files[0]), key), data_files=files,
                                         split="train", streaming=streaming)
        return datasets.load_dataset(ds.path, name=ds.name, split=ds.split, revision=ds.revision,
                                     data_files=ds.data_files, streaming=streaming)
    except AxoError:
        raise
    except Exception as err:  # datasets raises many types for "not found / offline"
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
