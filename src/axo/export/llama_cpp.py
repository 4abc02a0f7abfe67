"""llama.cpp's own pieces, pinned: its Hugging Face -> GGUF converter (convert_hf_to_gguf.py with its
`conversion` package and the `gguf` library of the same commit), taken from llama-cpp-python's
source distribution, whose build (`axo[gguf]`) is the llama.cpp that runs the export. One version
for both, so the file is written by the converter of the runtime that reads it.

The converter is fetched once (checksum-pinned) into axo's cache folder, `$AXO_CACHE` or
~/.cache/axo; `make setup` fetches it, so nothing downloads at test time."""

import hashlib
import io
import json
import os
import tarfile
import urllib.parse
import urllib.request
from pathlib import Path

from axo.errors import AxoError

VERSION = "0.3.36"  # llama-cpp-python (pyproject's `gguf` extra pins the same)
SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
CONVERTER = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")  # under vendor/llama.cpp/


def cache() -> Path:
    return Path(os.environ.get("AXO_CACHE") or Path.home() / ".cache" / "axo")


def sdist() -> bytes:
    """llama-cpp-python's source distribution, checked against its pinned checksum (kept in the cache)."""
    kept = cache() / f"llama_cpp_python-{VERSION}.tar.gz"
    if kept.exists():
        return kept.read_bytes()
    index = "https://pypi.org/pypi/llama-cpp-python/json"
    try:
        meta = json.load(urllib.request.urlopen(index, timeout=120))
        [url] = [u["url"] for u in meta["releases"][VERSION] if u["packagetype"] == "sdist"]
        data = urllib.request.urlopen(urllib.parse.urljoin(index, url), timeout=600).read()
    except OSError as err:
        raise AxoError(f"could not download llama-cpp-python {VERSION}'s source, which holds llama.cpp's GGUF "
                       f"converter ({err}). Fix: run once where PyPI is reachable, or put the file at {kept}.") from None
    if hashlib.sha256(data).hexdigest() != SHA256:
        raise AxoError(f"llama-cpp-python {VERSION}: the downloaded source does not match its checksum")
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_bytes(data)
    return data


def converter() -> Path:
    """The path of convert_hf_to_gguf.py, extracted once from the source distribution."""
    folder = cache() / f"llama.cpp-{VERSION}"
    script = folder / CONVERTER[0]
    if script.exists():
        return script
    prefix = f"llama_cpp_python-{VERSION}/vendor/llama.cpp/"
    with tarfile.open(fileobj=io.BytesIO(sdist())) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)
                   and any(m.name[len(prefix):].startswith(part) for part in CONVERTER)]
        for member in members:
            member.name = member.name[len(prefix):]
        tar.extractall(folder, members=members, filter="data")
    return script


if __name__ == "__main__":  # make setup: fetch it now, so nothing downloads later
    print(converter())
