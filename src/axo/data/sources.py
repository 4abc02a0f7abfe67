"""Raw rows from a local file, a local folder or the hub, as a `datasets.Dataset`."""

from pathlib import Path

from axo.config.data import DatasetConfig
from axo.errors import AxoError

EXTENSIONS = {
    ".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv",
    ".arrow": "arrow", ".txt": "text",
}


def load_rows(ds: DatasetConfig, key: str):
    """`key` is where the entry sits in the config (`datasets[0]`), for error messages."""
    import datasets

    path = Path(ds.path).expanduser()
    try:
        if path.is_file():
            return datasets.load_dataset(_file_type(ds, path, key), data_files=str(path), split="train")
        if path.is_dir():
            if (path / "dataset_info.json").exists() or (path / "state.json").exists():
                return datasets.load_from_disk(str(path))
            files = _local_files(path, ds.data_files)
            return datasets.load_dataset(_file_type(ds, Path(files[0]), key), data_files=files, split="train")
        return datasets.load_dataset(
            ds.path, name=ds.name, split=ds.split, revision=ds.revision, data_files=ds.data_files
        )
    except AxoError:
        raise
    except Exception as err:  # datasets raises many types for "not found / offline"
        raise AxoError(
            f"`{key}.path`: could not load {ds.path!r}: {type(err).__name__}: {err}\n"
            "Fix: point `path` at a local file or folder, or check the hub id and your network "
            "(HF_HUB_OFFLINE=1 means only cached datasets load)."
        ) from None


def _local_files(folder: Path, data_files) -> list[str]:
    patterns = [data_files] if isinstance(data_files, str) else (data_files or ["*"])
    files = sorted(str(f) for p in patterns for f in folder.glob(p) if f.suffix in EXTENSIONS)
    if not files:
        raise AxoError(f"no data files ({', '.join(EXTENSIONS)}) match {patterns} in {folder}")
    return files


def _file_type(ds: DatasetConfig, path: Path, key: str) -> str:
    if ds.ds_type:
        return ds.ds_type
    if path.suffix in EXTENSIONS:
        return EXTENSIONS[path.suffix]
    raise AxoError(
        f"`{key}`: cannot tell the format of {str(path)!r} from its extension; "
        f"set `ds_type` to one of json, parquet, csv, arrow, text"
    )
