"""from_pretrained calls whose failures name the config key, what was wrong and the fix."""

from pathlib import Path

from axo.errors import AxoError


def from_source(key: str, path: str, load):
    try:
        return load()
    except (OSError, ValueError, KeyError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        local = Path(path).expanduser()
        if not local.exists() and _looks_local(path):
            raise AxoError(f"`{key}`: the folder {path!r} does not exist. Fix: the path of a saved model "
                           "(config.json and weights), or a hub id such as org/name.") from None
        where = "a local folder" if local.exists() else "a hub id"
        if isinstance(err, OSError):
            fix = ("point it at a local folder with config.json and the weights (and the tokenizer files), or "
                   "check the hub id and your network (HF_HUB_OFFLINE=1 allows only cached models).")
        else:  # transformers' "does not recognize this architecture", a config it cannot read...
            fix = ("a model type this transformers knows (pip install -U transformers), or `trust_remote_code: true` "
                   "for a model that ships its own code.")
        raise AxoError(f"`{key}`: could not load {path!r} ({where}): {type(err).__name__}: {first}\nFix: {fix}") from None


def _looks_local(path: str) -> bool:
    """A filesystem path rather than a hub id (`org/name`)."""
    return path.startswith(("/", "./", "../", "~", ".\\")) or path.count("/") > 1 or "\\" in path
