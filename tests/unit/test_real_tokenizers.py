"""Label masks on real tokenizers of four families (built by `make setup` from llama.cpp's vocabulary
files, see tests/fixtures/real_tokenizers.py): for every SFT format, chat templates of the family and
preference rows as TRL tokenizes them, the trained tokens are exactly the answer and its end token,
whether the prompt ends in a space or not. SentencePiece word tokens carry the space before the word,
which is where a rule reading a token's first character went wrong."""

import json

import pytest
import torch

from axo.data.chat import setup_chat
from axo.data.prepare import prepare
from axo.data.templates import LLAMA3
from fixtures.real_tokenizers import FAMILIES, folder, missing
from unit.data_helpers import tokenize

if missing():
    pytest.fail(f"real tokenizers {missing()} are missing: run `make setup` (tests/fixtures/real_tokenizers.py)",
                pytrace=False)

# Llama 2's chat format, written here: the answer follows "[/INST] " (a prompt ending in a space).
LLAMA2 = ("{{- bos_token }}{%- for m in messages %}{%- if m.role == 'user' %}{{- '[INST] ' + m.content + ' [/INST] ' }}"
          "{%- elif m.role == 'assistant' %}{{- m.content + eos_token }}{%- endif %}{%- endfor %}")
OWN_TEMPLATE = {"llama2-spm": {"chat_template": "jinja", "chat_template_jinja": LLAMA2},
                "llama3-bpe": {"chat_template": "jinja", "chat_template_jinja": LLAMA3},
                "qwen2": {"chat_template": "tokenizer_default"}, "phi3": {"chat_template": "tokenizer_default"}}
END_OF_TURN = {"llama2-spm": "</s>", "llama3-bpe": "<|eot_id|>", "qwen2": "<|im_end|>", "phi3": "<|end|>"}
ANSWER = "Paris is the capital"


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder() / request.param)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return request.param, tokenizer


def trained_text(tokenizer, row) -> str:
    ids = [t for t, label in zip(row["input_ids"], row["labels"]) if label != -100]
    assert all(label == t for t, label in zip(row["input_ids"], row["labels"]) if label != -100)
    return tokenizer.decode(ids)


@pytest.mark.parametrize("fmt,keys,row", [
    ("alpaca", {}, {"instruction": "Capital of France?", "output": ANSWER}),
    ("mapping ending in a space", {"type": {"field_instruction": "q", "field_output": "a",
                                            "format": "Q: {instruction}\nA: ", "no_input_format": "Q: {instruction}\nA: "}},
     {"q": "Capital of France?", "a": ANSWER}),
    ("input_output ending in a space", {"type": "input_output"},
     {"segments": [{"text": "Q: Capital of France?\nA: ", "label": False}, {"text": ANSWER, "label": True}]}),
])
def test_sft_formats_train_exactly_the_answer(family, make_config, fmt, keys, row):
    name, tokenizer = family
    ds = {"path": "x.jsonl", "type": "alpaca", **keys}
    [out] = tokenize(make_config(datasets=[ds], sequence_len=512), tokenizer, [row])
    expected = ANSWER + (tokenizer.eos_token if fmt != "input_output ending in a space" else "")
    assert trained_text(tokenizer, out).strip() == expected, (name, fmt)


def test_completion_trains_everything(family, make_config):
    name, tokenizer = family
    [out] = tokenize(make_config(datasets=[{"path": "x", "type": "completion"}], sequence_len=512), tokenizer,
                     [{"text": "A: " + ANSWER}])
    assert trained_text(tokenizer, out).strip() == "A: " + ANSWER + tokenizer.eos_token


def test_chat_template_of_the_family_trains_the_answer_and_its_end_of_turn(family, make_config):
    name, tokenizer = family
    cfg = make_config(datasets=[{"path": "x", "type": "chat_template"}], sequence_len=512, **OWN_TEMPLATE[name])
    setup_chat(cfg, tokenizer)
    messages = [{"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": ANSWER},
                {"role": "user", "content": "And of Italy?"}, {"role": "assistant", "content": "Rome"}]
    [out] = tokenize(cfg, tokenizer, [{"messages": messages}])
    runs, current = [], []
    for token, label in zip(out["input_ids"], out["labels"]):
        if label != -100:
            current.append(token)
        elif current:
            runs.append(tokenizer.decode(current).strip())
            current = []
    runs += [tokenizer.decode(current).strip()] if current else []
    assert runs == [ANSWER + END_OF_TURN[name], "Rome" + END_OF_TURN[name]], (name, runs)


def test_preference_rows_as_trl_tokenizes_them(family, make_config, tmp_path):
    """DPO's completion (the tokens its loss reads) is the answer and its end of turn."""
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import DPOConfig, DPOTrainer

    name, tokenizer = family
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "Capital of France?"}],
                                "chosen": ANSWER, "rejected": "Lyon"}) + "\n")
    cfg = make_config(rl="dpo", datasets=[{"path": str(path), "type": "chat_template.default"}], sequence_len=512,
                      **OWN_TEMPLATE[name])
    train = prepare(cfg, tokenizer).train
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1)
    trainer = DPOTrainer(model=LlamaForCausalLM(config), ref_model=LlamaForCausalLM(config), train_dataset=train,
                         processing_class=tokenizer,
                         args=DPOConfig(output_dir=str(tmp_path / "o"), report_to="none", use_cpu=True,
                                        precompute_ref_log_probs=False))
    first = trainer.train_dataset[0]
    chosen = tokenizer.decode(first["chosen_ids"]).strip()
    assert chosen.startswith(ANSWER + END_OF_TURN[name]), (name, chosen)
