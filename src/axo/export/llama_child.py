"""llama.cpp in a child process. llama.cpp is native code compiled where it was installed: a kernel
that faults on this CPU, or an assertion in it, kills the process it runs in, with no Python error to
catch. So axo never loads it into its own process: a child (`python -m axo.export.llama_child`) holds
it and answers requests over a pipe, and when the child dies the parent raises an AxoError naming the
GGUF, its type, the signal and the llama.cpp build, and goes on (the trained model, the export and
the test session are untouched).

Requests are (operation, arguments); the operations are the functions in OPS below, each given the
child's state (`llama`: the loaded model, or None for operations that need none)."""

import logging
import signal
import subprocess
import sys
import tempfile
from multiprocessing.connection import Connection, Pipe
from pathlib import Path

from axo.errors import AxoError

# What each operation is doing, for the message when llama.cpp dies in it.
DOING = {"open": "loading", "metadata": "reading the metadata of", "tokenize": "tokenizing with",
         "logits": "evaluating", "greedy": "generating with", "generate": "generating with",
         "render": "rendering a chat template", "quantize": "quantizing into", "system_info": "starting"}


class LlamaChild:
    """A child process holding llama.cpp (and the model at `gguf`, loaded with `params` for
    llama_cpp.Llama); `call(op, ...)` runs one operation there, `stream(op, ...)` yields its items.
    `file_type`: the GGUF's type (q8_0, f32, ...) and `target` the file worked on (default: `gguf`), for
    messages. Use it as a context manager."""

    def __init__(self, gguf: str | Path | None = None, file_type: str = "", target: str | Path | None = None,
                 **params):
        import importlib.util

        if importlib.util.find_spec("llama_cpp") is None:
            raise AxoError("GGUF export, its check and `--gguf` need llama.cpp's Python binding. Fix: pip install "
                           "'axo[gguf]' (it builds llama.cpp, a few minutes; see the README for the portable build).")
        self.gguf, self.file_type = str(gguf) if gguf else None, file_type
        self.target = str(target or gguf or "")
        self._log = tempfile.TemporaryFile()  # the child's stderr: llama.cpp's log, faulthandler's trace
        ours, theirs = Pipe()
        self._process = subprocess.Popen(
            [sys.executable, "-X", "faulthandler", "-m", "axo.export.llama_child", str(theirs.fileno())],
            pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        theirs.close()
        self._conn: Connection = ours
        self.build = "llama-cpp-python (build not reported)"
        try:
            self.build = self.call("system_info")
            if "AMX_INT8 = 1" in self.build:
                logging.getLogger("axo").warning(
                    "This llama.cpp was compiled with AMX kernels, which crash on quantized models (llama.cpp issue "
                    "#20824). Fix: rebuild it portably: python -m axo.export.llama_cpp --build")
            if self.gguf:
                self.call("open", self.gguf, params)
        except BaseException:
            self.close()
            raise

    @property
    def pid(self) -> int:
        return self._process.pid

    def call(self, op: str, *args):
        [result] = list(self._exchange(op, args))
        return result

    def stream(self, op: str, *args):
        yield from self._exchange(op, args)

    def _exchange(self, op: str, args: tuple):
        self._send(op, (op, args))
        done = False
        try:
            while not done:
                kind, value = self._recv(op)
                done = kind in ("ok", "end", "error")
                if kind == "error":
                    raise AxoError(value)
                if kind != "end":
                    yield value
        finally:
            while not done:  # the caller stopped early: read the rest, so the next answer is the next request's
                done = self._recv(op)[0] in ("end", "error")

    def _send(self, op: str, message) -> None:
        try:
            self._conn.send(message)
        except OSError:
            raise self._crashed(op) from None

    def _recv(self, op: str):
        try:
            return self._conn.recv()
        except (EOFError, OSError):
            raise self._crashed(op) from None

    def _crashed(self, op: str) -> AxoError:
        try:
            code = self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            code = self._process.wait()
        how = (f"was killed by {signal.Signals(-code).name} (signal {-code})" if code < 0
               else f"exited with status {code}")
        target = f" {self.target} ({self.file_type})" if self.target else ""
        self._log.seek(0)
        said = [line for line in self._log.read().decode(errors="replace").splitlines() if line.strip()][-12:]
        return AxoError(
            f"llama.cpp {how} while {DOING.get(op, op)}{target}. Its build: {self.build}.\n"
            + ("Its last output:\n  " + "\n  ".join(said) + "\n" if said else "")
            + "Nothing axo wrote is lost: the trained model and the export stay in output_dir. Fix: llama.cpp crashes "
              "like this when it was built for another CPU, or with kernels that fault on this one (AMX: llama.cpp "
              "issue #20824). Rebuild it portably (`python -m axo.export.llama_cpp --build`, which `make setup` "
              "runs; by hand: " + _build_command() + "), then run again.")

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                self._conn.send(("exit", ()))
                self._process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()
        self._conn.close()
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _build_command() -> str:
    from axo.export.llama_cpp import build_command

    return build_command()


# ---- the child's side -------------------------------------------------------------------------------

def _system_info(state: dict) -> str:
    import llama_cpp

    return f"llama-cpp-python {llama_cpp.__version__}, {llama_cpp.llama_print_system_info().decode().strip(' |')}"


def _open(state: dict, path: str, params: dict) -> None:
    import llama_cpp

    if params.pop("f32_cache", False):  # (llama.cpp's default keeps the attention cache in f16)
        params.update(type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
    # verbose: llama.cpp's log goes to the child's stderr, which the parent shows only when the child dies
    state["llama"] = llama_cpp.Llama(model_path=path, verbose=True, **params)


def _metadata(state: dict, ids: list[int]) -> dict:
    """The chat template in the file, which of `ids` llama.cpp ends generation on, its EOS."""
    import llama_cpp

    llama = state["llama"]
    return {"template": llama.metadata.get("tokenizer.chat_template"), "eos": llama.token_eos(),
            "eog": [i for i in ids if llama_cpp.llama_vocab_is_eog(llama._model.vocab, i)]}


def _tokenize(state: dict, text: str, add_bos: bool, special: bool) -> list[int]:
    return state["llama"].tokenize(text.encode(), add_bos=add_bos, special=special)


def _logits(state: dict, ids: list[int]):
    """(the top token at each position, the last position's logits) for the sequence `ids`."""
    import numpy as np

    llama = state["llama"]
    llama.reset()
    llama.eval(ids)
    scores = np.asarray(llama.scores[:len(ids)])
    return scores.argmax(-1).tolist(), scores[-1].astype(np.float64)


def _greedy(state: dict, prompt: list[int], stops: list[int], new_tokens: int) -> list[int]:
    out = []
    for token in _tokens(state, prompt, 0.0, 1):
        out.append(token)
        if token in stops or len(out) >= new_tokens:
            break
    return out


def _generate(state: dict, prompt: list[int], temperature: float, stops: list[int], new_tokens: int):
    """(token, its text) for each generated token until a stop token (not yielded) or `new_tokens`."""
    made = 0
    for token in _tokens(state, prompt, temperature, 0 if temperature > 0 else 1):
        if token in stops or made >= new_tokens:
            return
        made += 1
        yield token, state["llama"].detokenize([token])


def _tokens(state: dict, prompt: list[int], temperature: float, top_k: int):
    llama = state["llama"]
    llama.reset()
    yield from llama.generate(prompt, temp=temperature, top_k=top_k, reset=True)


def _render(state: dict, template: str, messages: list[dict]) -> str | None:
    """The prompt llama.cpp's built-in template engine writes (None: a template it does not know)."""
    import ctypes

    import llama_cpp

    chat = (llama_cpp.llama_chat_message * len(messages))(
        *[llama_cpp.llama_chat_message(role=m["role"].encode(), content=m["content"].encode()) for m in messages])
    buffer = ctypes.create_string_buffer(1 << 16)
    n = llama_cpp.llama_chat_apply_template(template.encode(), chat, len(messages), True, buffer, len(buffer))
    return None if n < 0 else buffer.raw[:n].decode()


def _quantize(state: dict, source: str, path: str, ftype: int) -> int:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    return llama_cpp.llama_model_quantize(source.encode(), path.encode(), params)


OPS = {"system_info": _system_info, "open": _open, "metadata": _metadata, "tokenize": _tokenize, "logits": _logits,
       "greedy": _greedy, "render": _render, "quantize": _quantize}
STREAMS = {"generate": _generate}


def serve(conn: Connection) -> None:
    state: dict = {"llama": None}
    while True:
        try:
            op, args = conn.recv()
        except EOFError:  # the parent is gone
            return
        if op == "exit":
            return
        try:
            if op in STREAMS:
                for item in STREAMS[op](state, *args):
                    conn.send(("item", item))
                conn.send(("end", None))
            else:
                conn.send(("ok", OPS[op](state, *args)))
        except Exception as err:  # a Python-level failure: the parent raises it as an AxoError
            conn.send(("error", f"llama.cpp could not {op} ({type(err).__name__}: {err})"))


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
