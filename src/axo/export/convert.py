"""Run llama.cpp's converter (python -m axo.export.convert CONVERTER ARGS...) with two additions, both
about splitting text as the trained tokenizer does; the serving check (export/serving.py) then
compares llama.cpp's token ids with the tokenizer's on held-out text.

- llama.cpp recognizes a byte-level BPE tokenizer's pre-tokenizer by hashing the token ids a known
  model's vocabulary gives a probe text, so a tokenizer with its own vocabulary (trained for a task,
  as the quickstart's is) is refused even when its pre-tokenizer is one llama.cpp implements. Where
  the hash is unknown, the pre-tokenizer is read from tokenizer.json's definition instead.
- llama.cpp's reader of a SentencePiece-style tokenizer.json (no tokenizer.model) gives every token the
  same score, and llama.cpp merges pieces by score, so words split differently from the BPE merges
  the tokenizer trained with ("▁lem on" for "▁le mon"). Each token gets the rank of the merge that
  makes it as its score instead: llama.cpp then merges in the tokenizer's own order.
- A SentencePiece tokenizer whose tokenizer.json prepends "▁" only at the start of the input
  (Metaspace, prepend_scheme "first": transformers' non-legacy Llama tokenizers) writes no "▁"
  after a special token, where llama.cpp writes one before every piece of text unless the file says
  `add_space_prefix: false`. With a chat template, prompts start with special tokens and text only
  follows them, so the file says false and llama.cpp splits them as training did. (llama.cpp has no
  setting for "at the start only", so a plain-text prompt after a chat model's BOS differs: the
  check reports it.)"""

import json
import runpy
import sys
from pathlib import Path

# tokenizer.json pre-tokenizer steps -> the llama.cpp pre-tokenizer that splits text the same way
BY_DEFINITION = {
    # each digit alone, then GPT-2's pattern (llama.cpp: \p{N}, then the GPT-2 regex)
    (("Digits", True), ("ByteLevel", True)): "refact",
    (("ByteLevel", True),): "gpt-2",
}


def pre_tokenizer(folder: Path) -> str | None:
    path = folder / "tokenizer.json"
    if not path.exists():
        return None
    pre = json.loads(path.read_text()).get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    if any(s.get("type") == "ByteLevel" and s.get("add_prefix_space") for s in steps):
        return None
    key = tuple((s.get("type"), s.get("individual_digits") if s.get("type") == "Digits" else s.get("use_regex", True))
                for s in steps)
    return BY_DEFINITION.get(key)


def merge_ranks(folder: Path) -> dict[int, int]:
    """Token id -> 1 + the rank of the first BPE merge that makes it (tokens no merge makes: absent)."""
    model = json.loads((folder / "tokenizer.json").read_text())["model"]
    vocab, ranks = model["vocab"], {}
    for rank, merge in enumerate(model.get("merges", [])):
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        token = vocab.get(left + right)
        if token is not None and token not in ranks:
            ranks[token] = rank + 1
    return ranks


def prepends_only_first(folder: Path) -> bool:
    """A SentencePiece tokenizer that writes "▁" at the input's start only, in a chat model."""
    path, config = folder / "tokenizer.json", folder / "tokenizer_config.json"
    if not path.exists():
        return False
    pre = json.loads(path.read_text()).get("pre_tokenizer") or {}
    chat = (folder / "chat_template.jinja").exists() or (
        config.exists() and bool(json.loads(config.read_text()).get("chat_template")))
    return pre.get("type") == "Metaspace" and pre.get("prepend_scheme") == "first" and chat


def main(script: str, *args: str) -> None:
    folder = Path(script).parent
    sys.path[:0] = [str(folder), str(folder / "gguf-py")]
    from conversion import base

    recognize = base.TextModel.get_vocab_base_pre

    def by_hash_or_definition(self, tokenizer) -> str:
        try:
            return recognize(self, tokenizer)
        except NotImplementedError:
            name = pre_tokenizer(Path(self.dir_model))
            if name is None:
                raise
            base.logger.warning("pre-tokenizer read from tokenizer.json: %s", name)
            return name

    base.TextModel.get_vocab_base_pre = by_hash_or_definition
    llama_hf_vocab = base.TextModel._set_vocab_llama_hf

    def with_the_trained_space_prefix(self) -> None:
        llama_hf_vocab(self)
        key = "tokenizer.ggml.add_space_prefix"
        if not any(key in kv for kv in self.gguf_writer.kv_data) and prepends_only_first(Path(self.dir_model)):
            self.gguf_writer.add_add_space_prefix(False)

    base.TextModel._set_vocab_llama_hf = with_the_trained_space_prefix
    import gguf

    init = gguf.LlamaHfVocab.__init__

    def with_merge_ranks(self, base_path: Path) -> None:
        init(self, base_path)
        self.merge_rank = merge_ranks(Path(base_path))

    gguf.LlamaHfVocab.__init__ = with_merge_ranks
    gguf.LlamaHfVocab.get_token_score = lambda self, token_id: -float(self.merge_rank.get(token_id, 0))
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(*sys.argv[1:])
