"""Generate from the trained model, formatting prompts exactly as the training data was."""

import sys
from dataclasses import dataclass
from pathlib import Path

from axo.config import Config
from axo.errors import AxoError
from axo.methods import training_name


def stop_ids(tokenizer, stop_tokens) -> list[int]:
    """EOS and the ids of the stop tokens (the chat template's end-of-turn markers) that are tokens."""
    ids = {tokenizer.eos_token_id}
    for token in stop_tokens:
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            ids.add(token_id)
    return sorted(i for i in ids if i is not None)


@dataclass
class Generator:
    model: object
    tokenizer: object
    kind: object  # the row kind of the first dataset: it formats prompts as training saw them
    stop_tokens: tuple[str, ...]  # EOS and the chat template's end-of-turn markers (axo.data.chat)

    def encode(self, text: str):
        prompt, add_special_tokens = self.kind.prompt(text)
        return self.tokenizer(prompt, return_tensors="pt", add_special_tokens=add_special_tokens)

    @property
    def stop_ids(self) -> list[int]:
        return stop_ids(self.tokenizer, self.stop_tokens)

    def generate_ids(self, inputs, max_new_tokens: int, temperature: float = 0.0, streamer=None):
        import torch

        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        with torch.no_grad():
            out = self.model.generate(
                **inputs.to(self.model.device), max_new_tokens=max_new_tokens, streamer=streamer,
                eos_token_id=self.stop_ids, pad_token_id=self.tokenizer.pad_token_id, **sampling,
            )
        return out[0, inputs["input_ids"].shape[1]:]

    def answer(self, text: str, max_new_tokens: int) -> str:
        """The greedy answer, without printing it."""
        return self.tokenizer.decode(self.generate_ids(self.encode(text), max_new_tokens), skip_special_tokens=True)

    def stream(self, text: str, max_new_tokens: int, temperature: float) -> str:
        from transformers import TextStreamer

        streamer = TextStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        ids = self.generate_ids(self.encode(text), max_new_tokens, temperature, streamer)
        return self.tokenizer.decode(ids, skip_special_tokens=True)


@dataclass
class LlamaCppGenerator:
    """The same prompts, answered by llama.cpp from an exported GGUF (greedy, or sampled)."""

    llama: object  # an export.llama_child.LlamaChild
    prompts: Generator  # its tokenizer, row kind and stop tokens format the prompt; its model is unused

    def _tokens(self, text: str) -> list[int]:
        prompt, add_special_tokens = self.prompts.kind.prompt(text)
        return self.llama.call("tokenize", prompt, add_special_tokens, True)

    def answer(self, text: str, max_new_tokens: int) -> str:
        out = self.llama.call("greedy", self._tokens(text), self.prompts.stop_ids, max_new_tokens)
        return self.prompts.tokenizer.decode(out, skip_special_tokens=True)

    def stream(self, text: str, max_new_tokens: int, temperature: float) -> str:
        tokens = self._tokens(text)
        out = []
        for token, piece in self.llama.stream("generate", tokens, temperature, self.prompts.stop_ids, max_new_tokens):
            out.append(token)
            print(piece.decode(errors="replace"), end="", flush=True)
        print()
        return self.prompts.tokenizer.decode(out, skip_special_tokens=True)


def load_gguf_generator(cfg: Config, gguf: str) -> LlamaCppGenerator:
    """llama.cpp answering from `gguf`, in a child process that ends with this one (export/llama_child.py)."""
    from axo.export.llama_child import LlamaChild

    prompts = load_generator(cfg, model=False)
    return LlamaCppGenerator(LlamaChild(gguf, Path(gguf).stem.rsplit("-", 1)[-1], n_ctx=0, seed=cfg.train.seed),
                             prompts)


def load_generator(cfg: Config, checkpoint: str | None = None, model: bool = True) -> Generator:
    """The trained model and the prompt format; `model=False`: the prompt format only (the trained
    folder's tokenizer), for another runtime to answer."""
    import logging

    from axo.data.chat import context, load_processing
    from axo.data.rows import TextRows, row_kind
    from axo.model.loader import load_for_inference, load_tokenizer_for_inference

    if not cfg.method.generates or cfg.model.task == "multimodal_lm":
        task = cfg.model.task.replace("_", "-")
        raise AxoError("`axo inference` generates text from a prompt; this config trains "
                       f"{training_name(cfg.method)} with a {task} model, which it cannot prompt that way.")
    if model:
        model, tokenizer, what = load_for_inference(cfg, checkpoint)
        logging.getLogger("axo").info("Generating with the %s", what)
    else:
        model, tokenizer = None, load_tokenizer_for_inference(cfg, checkpoint)
    text = load_processing(cfg, tokenizer)
    if cfg.data.datasets:  # prompts look like the first dataset's rows
        kind = row_kind(cfg, context(cfg, text.chat, "datasets", 0, tokenizer))
    else:  # streamed raw text
        from axo.config.data import DatasetConfig
        from axo.data.formats.base import Context

        kind = TextRows(cfg, Context(DatasetConfig(path="-", type="completion"), cfg.data, tokenizer))
    return Generator(model, tokenizer, kind, text.chat.stop_tokens)


def interactive(gen: Generator, max_new_tokens: int, temperature: float) -> None:
    tty = sys.stdin.isatty()
    while True:
        if tty:
            print("\n> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line or line.strip() in ("exit", "quit"):
            return
        if line.strip():
            gen.stream(line.rstrip("\n"), max_new_tokens, temperature)
