"""from_pretrained calls whose "not found / offline" failures name the config key."""

from pathlib import Path

from axo.errors import AxoError


def from_source(key: str, path: str, load):
    try:
        return load()
    except OSError as err:
        where = "a local folder" if Path(path).expanduser().exists() else "a hub id"
        raise AxoError(
            f"`{key}`: could not load {path!r} ({where}): {str(err).splitlines()[0]}\n"
            "Fix: point it at a local folder with config.json and the weights, or check the "
            "hub id and your network (HF_HUB_OFFLINE=1 allows only cached models)."
        ) from None
