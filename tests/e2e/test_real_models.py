"""Real pretrained models, read from the GGUF files their PyPI packages ship (tests/fixtures/
real_models.py, fetched and dequantized once by `make setup`): SmolLM2-135M-Instruct (Llama, ChatML)
and Gemma 3 270M (sliding-window attention, tied embeddings, 262k vocabulary). A few steps each, on
one shared training per model: the loss falls on real text, the real templates train exactly the
answers, merging equals the adapter, the outputs reload in plain transformers and peft, `axo plan`
matches what training holds, and the GGUF export computes what was trained."""

import json
import logging
from pathlib import Path

import pytest
import torch

from axo.config import validate
from axo.data.chat import setup_chat
from axo.data.prepare import prepare
from axo.model.tokenizer import load_tokenizer
from axo.train.sft import train
from conftest import Losses
from fixtures.real_models import GEMMA3, SMOLLM2, path

for _name in (SMOLLM2, GEMMA3):
    if not path(_name).exists():
        pytest.fail(f"{_name} is missing: run `make setup` (tests/fixtures/real_models.py)", pytrace=False)

TEMPLATE = {SMOLLM2: {"chat_template": "tokenizer_default"}, GEMMA3: {"chat_template": "gemma3"}}
END_OF_TURN = {SMOLLM2: "<|im_end|>", GEMMA3: "<end_of_turn>"}


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """The quickstart's extraction task (examples/make_extract_data.py), 32 training rows."""
    from make_extract_data import main

    folder = tmp_path_factory.mktemp("extract")
    main(folder, n_train=32, n_test=8)
    return folder / "extract_train.jsonl"


def config(name: str, rows, out, **keys):
    return validate({"base_model": str(path(name)), "datasets": [{"path": str(rows), "type": "chat_template"}],
                     **TEMPLATE[name], "sequence_len": 128, "micro_batch_size": 4, "max_steps": 6,
                     "learning_rate": 1e-3, "warmup_steps": 0, "logging_steps": 1, "save_steps": 1000, "seed": 0,
                     "adapter": "lora", "lora_r": 8, "lora_alpha": 16, "lora_target_linear": True,
                     "output_dir": str(out), **keys})


@pytest.fixture(scope="module", params=[SMOLLM2, GEMMA3], ids=["smollm2", "gemma3"])
def lora_run(request, rows, tmp_path_factory):
    """(config, losses) of a 6-step LoRA run on the real model."""
    batch = 2 if request.param == GEMMA3 else 4  # (Gemma's logits over 262k tokens)
    cfg = config(request.param, rows, tmp_path_factory.mktemp("lora") / "out", micro_batch_size=batch)
    losses = Losses()
    train(cfg, callbacks=[losses])
    return cfg, losses.seen


def test_a_gguf_base_model_says_what_it_was_read_from(rows, tmp_path, caplog):
    from axo.model.from_gguf import model_folder

    with caplog.at_level(logging.INFO, logger="axo"):
        folder = model_folder(config(SMOLLM2, rows, tmp_path).model)
    assert "is a GGUF file with Q4_1 (79%), Q8_0 (21%) weights, read dequantized to fp32 (134.5M parameters)" \
        in caplog.text
    beside = validate({"base_model": str(path(SMOLLM2).parent), "gguf_file": SMOLLM2,
                       "datasets": [{"path": "x.jsonl", "type": "alpaca"}]})
    assert model_folder(beside.model) == folder  # the same file read through `gguf_file`
    with pytest.raises(Exception, match="gguf_file.*already names a .gguf file"):
        validate({"base_model": str(path(SMOLLM2)), "gguf_file": "x.gguf", "datasets": [{"path": "x", "type": "alpaca"}]})


def test_the_dequantized_smollm2_answers_as_the_instruct_model_does(rows, tmp_path):
    """The weights are the pretrained ones: it knows the capital of France (greedy, its own template)."""
    from axo.infer.generate import load_generator

    gen = load_generator(config(SMOLLM2, rows, tmp_path / "none"))
    assert gen.answer("What is the capital of France? Answer in one word.", 12) == "The capital of France is Paris."


@pytest.mark.parametrize("name", [SMOLLM2, GEMMA3], ids=["smollm2", "gemma3"])
def test_real_templates_train_exactly_the_answers(name, rows, tmp_path):
    cfg = config(name, rows, tmp_path)
    tokenizer = load_tokenizer(cfg)
    prepared = prepare(cfg, tokenizer, setup_chat(cfg, tokenizer)).train
    answers = [json.loads(line)["messages"][1]["content"] for line in rows.read_text().splitlines()]
    trained = [tokenizer.decode([t for t, label in zip(row["input_ids"], row["labels"]) if label != -100])
               for row in prepared]  # (in the order preparation shuffled them into)
    assert sorted(trained) == sorted(answer + END_OF_TURN[name] for answer in answers)
    first = tokenizer.decode(prepared[0]["input_ids"])
    if name == GEMMA3:
        assert first.startswith("<bos><start_of_turn>user\nExtract") and first.endswith("<end_of_turn>\n")
    else:  # SmolLM2's own template adds its system prompt
        assert first.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")


def test_lora_on_real_weights_lowers_the_loss(lora_run):
    cfg, losses = lora_run
    assert len(losses) == 6 and sum(losses[-2:]) / 2 < 0.6 * sum(losses[:2]) / 2, losses


@pytest.fixture(scope="module")
def merged(lora_run):
    """The LoRA run's adapter merged into its base model (`axo merge-lora`), a plain transformers folder."""
    from axo.export.merge import merge_lora

    return merge_lora(lora_run[0])


def test_the_merged_model_computes_what_the_adapter_does_and_reloads_in_plain_libraries(lora_run, merged):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg, _ = lora_run
    adapter_config = json.loads((Path(cfg.train.output_dir) / "adapter_config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(cfg.train.output_dir)
    ids = tokenizer("Meet Ines, 33, from Riga.", return_tensors="pt").input_ids
    base = AutoModelForCausalLM.from_pretrained(adapter_config["base_model_name_or_path"])
    with torch.no_grad():
        with_adapter = PeftModel.from_pretrained(base, cfg.train.output_dir)(ids).logits
        merged = AutoModelForCausalLM.from_pretrained(merged)
        assert torch.allclose(merged(ids).logits, with_adapter, atol=1e-3)
    config = merged.config
    if config.model_type.startswith("gemma3"):  # sliding windows and tied embeddings survived merge and save
        assert config.sliding_window == 512 and config.layer_types.count("full_attention") == 3
        assert config.tie_word_embeddings
    assert merged.lm_head.weight.data_ptr() == merged.get_input_embeddings().weight.data_ptr()


def test_full_fine_tune_on_real_weights_lowers_the_loss(rows, tmp_path):
    cfg = config(SMOLLM2, rows, tmp_path / "out", adapter=None, learning_rate=5e-5, max_steps=3,
                 micro_batch_size=2)
    losses = Losses()
    train(cfg, callbacks=[losses])
    assert losses.seen[-1] < 0.6 * losses.seen[0], losses.seen
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert sum(p.numel() for p in reloaded.parameters()) == 134_515_008


def test_plan_matches_what_training_the_real_135m_holds(rows, tmp_path):
    """`axo plan`'s figures against one real LoRA step on SmolLM2-135M: the state it keeps (weights,
    gradients, AdamW's moments) byte for byte, and the activations (every tensor the forward pass
    saves for backward, counted once per storage). tests/unit/test_plan.py checks the peak of whole
    steps under torch's MemTracker on small models; on 30 layers MemTracker takes minutes."""
    import transformers

    from axo.model.build import trainable_model
    from axo.plan.estimate import estimate, setup_of
    from axo.train.args import to_training_args

    cfg = config(SMOLLM2, rows, tmp_path, micro_batch_size=2)
    figures = estimate(cfg, setup_of(cfg, bf16_device=False))
    tokenizer = load_tokenizer(cfg)
    model = trainable_model(cfg, "fp32", tokenizer)
    model.train()
    optimizer_cls, kwargs = transformers.Trainer.get_optimizer_cls_and_kwargs(to_training_args(cfg, "fp32", False))
    optimizer = optimizer_cls([p for p in model.parameters() if p.requires_grad], **kwargs)
    weights = {p.untyped_storage().data_ptr(): p.untyped_storage().nbytes() for p in model.parameters()}
    saved = {}

    def keep(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    ids = torch.randint(0, len(tokenizer), (2, 128))
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    state = sum(weights.values()) + sum(p.grad.nbytes for p in model.parameters() if p.grad is not None) + sum(
        v.nbytes for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v))
    assert figures.state == pytest.approx(state, rel=0.02)
    assert figures.activations == pytest.approx(sum(saved.values()), rel=0.1)


def test_the_gguf_export_of_the_fine_tuned_model_computes_what_was_trained(lora_run, merged):
    from axo.export.gguf import export_gguf
    from axo.export.serving import check_serving

    cfg, _ = lora_run
    gguf = export_gguf(cfg, "f32", checkpoint=str(merged))  # (what `axo export` merges first, done once here)
    gemma = not cfg.model.base_model.endswith(SMOLLM2)  # (its 262k-token vocabulary makes each token slow)
    report = check_serving(cfg, gguf, rows=2 if gemma else 4, new_tokens=12 if gemma else 24)
    assert not report.problems, report.table()
    assert report.ids_match and report.template_match and report.stops_match, report.table()
    if cfg.model.base_model.endswith(SMOLLM2):
        assert report.max_logit_diff <= 1e-4 and report.stopped == 4, report.table()  # (Gemma 3 is a base model)
    else:  # GELU through llama.cpp's fp16 table (serving.GELU_F32_SHARE); Gemma 3 270M's logits reach ~30
        assert report.gelu and report.max_logit_diff <= 1e-3 * report.logit_scale, report.table()
    assert report.generations == report.generations_match == report.rows, report.table()
    assert report.rendered == "identical", report.table()  # llama-cli's own engine writes the same prompt
    if cfg.model.base_model.endswith(SMOLLM2):  # its BOS is <|im_start|>, which its template writes itself
        modelfile = (Path(cfg.train.output_dir) / "gguf" / "Modelfile").read_text()
        assert '(ne .Role "system") }}<|im_start|>system\nYou are a helpful AI assistant named SmolLM' in modelfile
    else:  # Gemma 3's sliding windows and tied embeddings, as llama.cpp reads them
        from gguf import GGUFReader

        reader = GGUFReader(str(gguf))
        assert int(reader.fields["gemma3.attention.sliding_window"].parts[-1][0]) == 512
        assert "output.weight" not in {t.name for t in reader.tensors}  # the output layer is token_embd
