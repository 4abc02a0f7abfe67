"""Generate from the trained model, formatting prompts exactly as the training data was."""

import sys
from dataclasses import dataclass

from axo.config import Config
from axo.data.formats import Context, get_format


@dataclass
class Generator:
    model: object
    tokenizer: object
    ctx: Context

    def encode(self, text: str):
        fmt = get_format(self.ctx.ds)
        return self.tokenizer(fmt.prompt(text, self.ctx), return_tensors="pt",
                              add_special_tokens=fmt.ADD_SPECIAL_TOKENS)

    @property
    def stop_ids(self) -> list[int]:
        """EOS and the template's end-of-turn tokens: a chat model ends its turn with the latter."""
        ids = {self.tokenizer.eos_token_id}
        for token in self.ctx.eot:
            token_id = self.tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id != self.tokenizer.unk_token_id:
                ids.add(token_id)
        return sorted(ids)

    def generate_ids(self, inputs, max_new_tokens: int, temperature: float = 0.0, streamer=None):
        import torch

        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        with torch.no_grad():
            out = self.model.generate(
                **inputs.to(self.model.device), max_new_tokens=max_new_tokens, streamer=streamer,
                eos_token_id=self.stop_ids, pad_token_id=self.tokenizer.pad_token_id, **sampling,
            )
        return out[0, inputs["input_ids"].shape[1]:]

    def stream(self, text: str, max_new_tokens: int, temperature: float) -> str:
        from transformers import TextStreamer

        streamer = TextStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        ids = self.generate_ids(self.encode(text), max_new_tokens, temperature, streamer)
        return self.tokenizer.decode(ids, skip_special_tokens=True)


def load_generator(cfg: Config, checkpoint: str | None = None) -> Generator:
    import logging

    from axo.config.data import DatasetConfig
    from axo.data.rows import format_context
    from axo.model.loader import load_for_inference

    model, tokenizer, what = load_for_inference(cfg, checkpoint)
    logging.getLogger("axo").info("Generating with the %s", what)
    # Prompts look like the first dataset's rows; raw text for pre-tokenized or streamed data.
    first = (cfg.data.datasets or [None])[0]
    ds = first if first is not None and first.type is not None else DatasetConfig(path="-", type="completion")
    return Generator(model, tokenizer, format_context(cfg, ds, tokenizer))


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
