"""GGUF export (export/gguf.py), served by llama.cpp (llama-cpp-python), computes what the trained
model computes in transformers (export/serving.py). Two architectures with real tokenizers, Llama
with Llama 2's SentencePiece vocabulary and Qwen2 with its byte-level BPE, each trained for a few
seconds to answer short questions and stop on ChatML's <|im_end|>; and the quickstart model, whose
own byte-level tokenizer llama.cpp does not know by its vocabulary."""

import json
import re
from pathlib import Path

import pytest

from axo.export.gguf import export_gguf, go_template
from axo.export.serving import check_serving
from axo.train.sft import train
from conftest import EXAMPLES, QUICKSTART_PROMPT

QUESTIONS = {"What colour is the sky?": "blue", "What colour is grass?": "green", "What colour is snow?": "white",
             "What colour is coal?": "black", "What colour is a ruby?": "red", "What colour is a lemon?": "yellow",
             "What colour is an orange?": "orange", "What colour is a plum?": "purple"}
ARCHITECTURES = {"llama": ("llama2-spm", "LlamaConfig"), "qwen2": ("qwen2", "Qwen2Config")}


@pytest.fixture(scope="module", params=list(ARCHITECTURES))
def trained(request, tmp_path_factory):
    """(config, folder): a tiny model of the architecture with its real tokenizer, trained on ChatML
    conversations (the answer, then <|im_end|>)."""
    import torch
    import transformers
    from transformers import AutoTokenizer

    from axo.config import validate
    from fixtures.real_tokenizers import folder as tokenizers

    family, config_class = ARCHITECTURES[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    tokenizer = AutoTokenizer.from_pretrained(tokenizers() / family)
    tokenizer.add_tokens(["<|im_start|>", "<|im_end|>"], special_tokens=True)  # (Qwen2's has them)
    config = getattr(transformers, config_class)(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)
    torch.manual_seed(0)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(folder / "base")
    tokenizer.save_pretrained(folder / "base")
    rows = folder / "colours.jsonl"
    rows.write_text("".join(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})
                            + "\n" for q, a in list(QUESTIONS.items()) * 4))
    data = [{"path": str(rows), "type": "chat_template"}]
    cfg = validate({"base_model": str(folder / "base"), "chat_template": "chatml", "sequence_len": 64, "seed": 0,
                    "datasets": data, "micro_batch_size": 8, "max_steps": 40,  # (checked on its training rows)
                    "learning_rate": 1e-2, "logging_steps": 10, "save_steps": 1000, "output_dir": str(folder / "out")})
    train(cfg)
    return cfg


def test_f32_export_computes_what_was_trained(trained):
    path = export_gguf(trained, "f32")
    report = check_serving(trained, path, rows=8)
    assert not report.problems, report.table()
    assert report.max_logit_diff <= 1e-4 and report.ids_match and report.template_match and report.stops_match
    assert report.rendered == "identical"  # llama.cpp's own template engine writes the same prompt
    # every greedy answer is the trained one, and both stop on the template's end of turn
    assert report.generations == report.generations_match == report.stopped == 8, report.table()
    modelfile = (path.parent / "Modelfile").read_text()
    assert f"FROM ./{path.name}" in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert '{{- if eq .Role "assistant" }}<|im_start|>assistant\n{{ .Content }}<|im_end|>\n{{ end }}' in modelfile


# On Llama only: the f32 check covers Qwen2's architecture, and the quickstart exports the real
# SmolLM2 (byte-level BPE, like Qwen2's) in q8_0.
@pytest.mark.parametrize("trained", ["llama"], indirect=True)
def test_q8_0_agrees_on_the_top_token(trained):
    report = check_serving(trained, export_gguf(trained, "q8_0"), rows=16)
    assert report.positions >= 200 and report.top1_agreement >= 0.99, report.table()
    assert not report.problems, report.table()


def quickstart(sft_start, make_config):
    """The config of the briefly trained quickstart model (conftest's sft_start), its eight held-out rows."""
    return make_config(base_model=str(EXAMPLES / "tiny-llama"), reinit_weights=True, sequence_len=128,
                       datasets=[{"path": str(EXAMPLES / "data" / "sort_train.jsonl"), "type": QUICKSTART_PROMPT}],
                       test_datasets=[{"path": str(sft_start / "eight.jsonl"), "type": QUICKSTART_PROMPT}],
                       output_dir=str(sft_start / "sft"))


def test_the_quickstart_model_serves_as_trained(sft_start, make_config):
    """The quickstart's tokenizer is its own (digits one by one, then GPT-2's pattern): llama.cpp does not
    know its vocabulary, so axo names the pre-tokenizer from tokenizer.json, and the check confirms
    that llama.cpp splits held-out prompts into the same ids and answers them the same way."""
    cfg = quickstart(sft_start, make_config)
    gguf = export_gguf(cfg, "f32")
    report = check_serving(cfg, gguf, rows=8)
    assert not report.problems and report.generations_match == 8 and report.max_logit_diff <= 1e-4, report.table()
    # `axo inference --gguf`: llama.cpp answers a held-out prompt, tokenizing it itself, as transformers does
    from axo.infer.generate import load_generator, load_gguf_generator

    prompt = json.loads((sft_start / "eight.jsonl").read_text().splitlines()[0])["instruction"]
    assert load_gguf_generator(cfg, str(gguf)).stream(prompt, 20, 0.0) == load_generator(cfg).stream(prompt, 20, 0.0)


def test_a_llama_cpp_crash_in_the_check_is_an_error_that_loses_nothing(sft_start, make_config, monkeypatch):
    """llama.cpp dies (SIGSEGV, as a faulting kernel would) while it evaluates the held-out rows: the check
    raises an error naming the file, its type and the signal; the export and the trained model stay, and
    this process checks the file again."""
    import os
    import signal

    from axo.errors import AxoError
    from axo.export.llama_child import LlamaChild

    cfg = quickstart(sft_start, make_config)
    gguf = export_gguf(cfg, "q8_0")
    def written():  # the trained model's files and the export, with their times
        return {p: p.stat().st_mtime_ns for p in [*(sft_start / "sft").glob("*.*"), *gguf.parent.iterdir()]}

    before = written()
    call = LlamaChild.call

    def crash_when_evaluating(self, op, *args):
        if op == "logits":
            os.kill(self.pid, signal.SIGSEGV)
            self._process.wait()
        return call(self, op, *args)

    monkeypatch.setattr(LlamaChild, "call", crash_when_evaluating)
    with pytest.raises(AxoError, match=re.escape(f"llama.cpp was killed by SIGSEGV (signal 11) while evaluating {gguf} "
                                                 "(q8_0). Its build: llama-cpp-python")):
        check_serving(cfg, gguf, rows=2)
    assert written() == before
    monkeypatch.undo()
    assert not check_serving(cfg, gguf, rows=2).problems


def test_chat_templates_become_ollama_templates():
    """A ChatML template as Ollama's Go template: each role between its head and tail, the generation
    prompt after a last user turn; a default system text opens a conversation that has none."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(EXAMPLES / "tiny-llama")
    tokenizer.chat_template = ("{% if messages[0].role != 'system' %}<|im_start|>system\nBe brief.<|im_end|>\n{% endif %}"
                               "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
                               "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    template = go_template(tokenizer)
    assert template.startswith("{{- range $i, $_ := .Messages }}")
    assert '{{- if and (eq $i 0) (ne .Role "system") }}<|im_start|>system\nBe brief.<|im_end|>\n{{ end }}' in template
    assert '{{- if and $last (ne .Role "assistant") }}<|im_start|>assistant\n{{ end }}' in template
    tokenizer.chat_template = "{%- for m in messages|reverse %}{{ m.content }}{%- endfor %}"  # rewrites history
    assert go_template(tokenizer) is None


def test_unsupported_architectures_are_refused_by_name(make_config, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from axo.errors import AxoError

    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=64)).save_pretrained(tmp_path)
    with pytest.raises(AxoError, match="GGUF export of GPT2LMHeadModel is not supported; axo exports LlamaForCausalLM"):
        export_gguf(make_config(output_dir=str(tmp_path)), "f16")
    assert not Path(tmp_path / "gguf").exists() or not list((tmp_path / "gguf").glob("*.gguf"))
