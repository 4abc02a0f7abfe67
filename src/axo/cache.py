"""axo's own cache folder, `$AXO_CACHE` or ~/.cache/axo: llama.cpp's converter (export/llama_cpp.py)
and the models read from GGUF files (model/from_gguf.py) are kept there across runs and clones."""

import os
from pathlib import Path


def cache() -> Path:
    return Path(os.environ.get("AXO_CACHE") or Path.home() / ".cache" / "axo")
