"""llama.cpp's own pieces, pinned: its Hugging Face -> GGUF converter (convert_hf_to_gguf.py with its
`conversion` package and the `gguf` library of the same commit), taken from llama-cpp-python's
source distribution, whose build (`axo[gguf]`) is the llama.cpp that runs the export. One version
for both, so the file is written by the converter of the runtime that reads it.

The converter is fetched once (checksum-pinned) into axo's cache folder, `$AXO_CACHE` or
~/.cache/axo; `make setup` fetches it, so nothing downloads at test time.

llama-cpp-python compiles llama.cpp when it is installed, by default for the CPU that compiles it
(-march=native): such a build carries that CPU's kernels (AVX-512, AMX) and faults or stops on
another machine, and ggml's AMX kernels for quantized weights crash even on the machine that built
them (llama.cpp issue #20824; a q8_0 model here). `python -m axo.export.llama_cpp --build` (which
`make setup` runs) compiles it for a portable instruction set instead."""

import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import tarfile
import urllib.parse
import urllib.request
from pathlib import Path

from axo.cache import cache
from axo.errors import AxoError

VERSION = "0.3.36"  # llama-cpp-python (pyproject's `gguf` extra pins the same)
SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
CONVERTER = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")  # under vendor/llama.cpp/


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


# x86-64-v3 (AVX2, FMA, F16C, BMI2), which every x86 server and laptop of the last decade runs, without
# AVX-512 or AMX; other architectures build for their baseline
X86_64_V3 = ("-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON "
             "-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF")


def portable_cmake_args(machine: str | None = None) -> str:
    return X86_64_V3 if (machine or platform.machine()).lower() in ("x86_64", "amd64") else "-DGGML_NATIVE=OFF"


def build_command() -> str:
    """The command that installs the portable build by hand."""
    return (f'CMAKE_ARGS="{portable_cmake_args()}" pip install --force-reinstall --no-cache-dir --no-deps '
            f"llama-cpp-python=={VERSION}")


def build_portable() -> None:
    """Install llama-cpp-python VERSION compiled with portable_cmake_args(), unless the installed one
    already is (a record in the environment says so). --no-cache-dir: pip's wheel cache would hand back
    a build made with other flags."""
    import importlib.util

    record = Path(sys.prefix) / "axo-llama-cpp-build.txt"
    wanted = f"llama-cpp-python=={VERSION} CMAKE_ARGS={portable_cmake_args()}\n"
    if record.exists() and record.read_text() == wanted and importlib.util.find_spec("llama_cpp"):
        return
    print(f"building llama.cpp (llama-cpp-python {VERSION}) for a portable instruction set: a few minutes, once",
          flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-cache-dir", "--force-reinstall", "--no-deps",
                    f"llama-cpp-python=={VERSION}"], env={**os.environ, "CMAKE_ARGS": portable_cmake_args()},
                   check=True)
    record.write_text(wanted)


if __name__ == "__main__":  # make setup: fetch the converter now, so nothing downloads later; --build first
    if sys.argv[1:] == ["--build"]:
        build_portable()
    else:
        print(converter())
