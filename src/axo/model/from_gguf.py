"""Fine-tuning from a GGUF file: `base_model: model.gguf` (or `gguf_file:` beside a folder).

transformers reads GGUF (`gguf_file=`) and dequantizes every tensor to a normal float model, but that
takes a minute (Gemma 3 270M: 50 s on 2 cores, and 20 s more for its 262k-token tokenizer), and the
model it returns is still marked as GGUF-quantized, which `save_pretrained` refuses. So axo reads a
GGUF once, into a plain transformers folder (safetensors, config, tokenizer with the file's chat
template) in its cache, and every later load, tokenizer read, `axo plan`, merge and export of the run
reads that folder like any other model.

    python -m axo.model.from_gguf FILE.gguf     # dequantize into the cache now, print the folder
"""

import functools
import hashlib
import json
import logging
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from axo.cache import cache
from axo.errors import AxoError

log = logging.getLogger("axo")
RECORD = "axo-from-gguf.json"  # written last: a folder without it is unfinished


def source(m) -> Path | None:
    """The GGUF file a model config names (`base_model: x.gguf`, or `gguf_file` in the folder)."""
    if m.gguf_file:
        return Path(m.base_model).expanduser() / m.gguf_file
    return Path(m.base_model).expanduser() if m.base_model.lower().endswith(".gguf") else None


def model_folder(m) -> str:
    """The folder transformers loads the base model from: `base_model`, or the dequantized copy
    of its GGUF file (made on first use)."""
    gguf = source(m)
    return str(dequantized(gguf.resolve())) if gguf else m.base_model


@functools.cache
def dequantized(gguf: Path) -> Path:
    if not gguf.is_file():
        raise AxoError(f"`base_model`: the GGUF file {str(gguf)!r} does not exist. Fix: the path of a .gguf file "
                       "(or `base_model: FOLDER` with `gguf_file: NAME.gguf`).")
    folder = cache() / "from-gguf" / f"{gguf.stem}-{_file_key(gguf)}"
    from filelock import FileLock

    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock"):  # several ranks of one launch convert once
        if not (folder / RECORD).exists():
            _convert(gguf, folder)
    record = json.loads((folder / RECORD).read_text())
    log.info("base_model %s is a GGUF file with %s weights, read dequantized to %s (%.1fM parameters) from %s",
             gguf.name, record["weights"], record["dtype"], record["parameters"] / 1e6, folder)
    return folder


def _file_key(path: Path, span: int = 4 << 20) -> str:
    """Content key without reading a whole model: size, the first and the last 4 MiB (the header,
    metadata and tensor index are at the start; a changed tensor changes the size or the tail)."""
    digest = hashlib.sha256(str(path.stat().st_size).encode())
    with path.open("rb") as f:
        digest.update(f.read(span))
        f.seek(max(0, path.stat().st_size - span))
        digest.update(f.read(span))
    return digest.hexdigest()[:16]


def weight_types(gguf: Path) -> str:
    """The quantization the file's weights came in, by share of parameters: 'Q4_1', 'Q4_K (62%), Q6_K (38%)'."""
    from gguf import GGUFReader

    counts: Counter = Counter()
    for tensor in GGUFReader(str(gguf)).tensors:
        if len(tensor.shape) > 1 or tensor.tensor_type.name not in ("F32", "F16", "BF16"):  # norms stay F32
            counts[tensor.tensor_type.name] += int(tensor.n_elements)
    total = sum(counts.values()) or 1
    shares = [(name, n / total) for name, n in counts.most_common() if n / total >= 0.01]
    if len(shares) == 1:
        return shares[0][0]
    return ", ".join(f"{name} ({share:.0%})" for name, share in shares)


def _convert(gguf: Path, folder: Path) -> None:
    import torch
    import transformers

    started = time.monotonic()
    weights = weight_types(gguf)
    log.info("base_model %s is a GGUF file with %s weights: dequantizing it once into %s (a minute or two)",
             gguf.name, weights, folder)
    where = {"pretrained_model_name_or_path": str(gguf.parent), "gguf_file": gguf.name}
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(**where)
        read = transformers.AutoModelForCausalLM.from_pretrained(**where, dtype=torch.float32)
    except (ValueError, KeyError, OSError, RuntimeError) as err:
        raise AxoError(f"`base_model`: transformers {transformers.__version__} could not read the GGUF file {gguf}: "
                       f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}\nFix: a GGUF of an "
                       "architecture transformers reads from GGUF (Llama, Mistral, Qwen2/3, Gemma 2/3, Phi-3...), or "
                       "the model's own transformers folder.") from None
    # The model transformers returns is marked as GGUF-quantized (save_pretrained refuses it): the same
    # weights go into a plain model built from the same config.
    config = read.config
    config.__dict__.pop("quantization_config", None)
    with torch.device("meta"):
        plain = type(read)(config)
    plain.load_state_dict(read.state_dict(), assign=True)
    plain.tie_weights()
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    plain.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    parameters = sum(p.numel() for p in plain.parameters())
    (partial / RECORD).write_text(json.dumps({
        "gguf": str(gguf), "weights": weights, "dtype": "fp32", "parameters": parameters,
        "architecture": type(plain).__name__, "seconds": round(time.monotonic() - started, 1),
        "transformers": transformers.__version__}, indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        print(dequantized(Path(sys.argv[1]).resolve()))
    except AxoError as err:
        sys.exit(f"error: {err}")
