"""llama.cpp runs in a child process (export/llama_child.py): when native code dies there, axo raises an
error naming the GGUF, its type, the signal and the llama.cpp build, and this process (the test
session, the axo command) goes on. The child here holds a real vocabulary-only GGUF from the
llama-cpp-python source axo pins (fetched by `make setup`)."""

import io
import os
import signal
import tarfile

import pytest

from axo.errors import AxoError
from axo.export.llama_child import LlamaChild
from axo.export.llama_cpp import VERSION, sdist

pytest.importorskip("llama_cpp", reason="llama-cpp-python is in the dev extra: run `make setup`")


@pytest.fixture(scope="module")
def vocab_gguf(tmp_path_factory):
    member = f"llama_cpp_python-{VERSION}/vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf"
    folder = tmp_path_factory.mktemp("gguf")
    with tarfile.open(fileobj=io.BytesIO(sdist())) as tar:
        tar.extract(member, folder, filter="data")
    path = folder / "model-f16.gguf"  # (named as axo's exports are: the type is read from the name)
    (folder / member).rename(path)
    return path


def test_the_child_answers_what_llama_cpp_computes(vocab_gguf):
    with LlamaChild(vocab_gguf, "f16", vocab_only=True) as llama:
        assert llama.build.startswith(f"llama-cpp-python {VERSION}, CPU : ")
        ids = llama.call("tokenize", "Hello world", True, True)
        assert ids[0] == 1 and len(ids) > 2  # BOS, then the words
        assert llama.call("metadata", [2])["eos"] == 2


def test_a_crash_in_the_child_is_an_error_naming_file_type_signal_and_build(vocab_gguf):
    llama = LlamaChild(vocab_gguf, "f16", vocab_only=True)
    os.kill(llama.pid, signal.SIGSEGV)  # as a faulting kernel would
    with pytest.raises(AxoError) as caught:
        llama.call("tokenize", "Hello world", True, True)
    message = str(caught.value)
    assert f"llama.cpp was killed by SIGSEGV (signal 11) while tokenizing with {vocab_gguf} (f16). Its build" in message
    assert f"Its build: llama-cpp-python {VERSION}, CPU : " in message
    assert "Fatal Python error: Segmentation fault" in message  # the child's last words (faulthandler)
    assert "Nothing axo wrote is lost" in message and "-DGGML_NATIVE=OFF" in message
    llama.close()
    with LlamaChild(vocab_gguf, "f16", vocab_only=True) as again:  # this process goes on
        assert again.call("tokenize", "Hello", False, True)


def test_llama_cpps_template_engine_runs_in_the_child():
    with LlamaChild() as llama:
        messages = [{"role": "user", "content": "hi"}]
        first = llama.call("render", "chatml", messages)
        assert first == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        assert llama.call("render", "not a template anyone knows", messages) is None
        assert llama.call("render", "chatml", messages) == first


def test_a_python_error_in_the_child_is_an_axo_error(tmp_path):
    with pytest.raises(AxoError, match="llama.cpp could not open"):
        LlamaChild(tmp_path / "model-q8_0.gguf", "q8_0")
