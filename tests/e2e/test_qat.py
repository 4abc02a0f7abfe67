"""Quantization-aware training and post-training quantization (torchao) on a tiny Llama: the fake
quantization trained with is exactly the rounding the quantized copy applies, the warm-up really
holds it back, and the quantized copy saves, reloads to the same logits and generates."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

from axo.config import validate
from axo.config.quantization import QATScheme
from axo.errors import AxoError
from axo.model.qat import fake_quantizers, prepare_qat
from axo.train.sft import train
from conftest import Losses

INT4 = {"weight_dtype": "int4", "group_size": 16}
LORA = {"adapter": "lora", "lora_r": 8, "lora_alpha": 16, "lora_target_linear": True}


def batch(tokenizer):
    return tokenizer(["### Instruction:\nSort the digits: 3 1 2\n\n### Response:\n1 2 3"], return_tensors="pt")


def fake_quantized_logits(folder: Path, scheme: dict, inputs) -> torch.Tensor:
    """What the model in `folder` computed while QAT-training for `scheme`."""
    model = AutoModelForCausalLM.from_pretrained(folder)
    prepare_qat(model, QATScheme(**scheme))
    with torch.no_grad():
        return model(**inputs).logits


def quantized_in_memory_logits(folder: Path, scheme: dict, inputs) -> torch.Tensor:
    """The float model in `folder` quantized as it loads, never saved."""
    from axo.config.quantization import TorchAOScheme
    from axo.export.quantize import _untie_head
    from axo.model.quantization import to_torchao_export_config

    if scheme.get("quantize_embedding"):  # quantize_model unties the head first; so must we
        model = AutoModelForCausalLM.from_pretrained(folder)
        _untie_head(model)
        model.save_pretrained(folder / "untied")
        folder = folder / "untied"
    config = to_torchao_export_config(TorchAOScheme(**scheme), "model.embed_tokens")
    model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=config)
    with torch.no_grad():
        return model(**inputs).logits


def quantized_weight_types(model) -> set[str]:
    return {type(m.weight).__name__ for m in model.modules() if isinstance(m, torch.nn.Linear)}


def assert_close(a, b, tol):
    assert ((a - b).norm() / b.norm()).item() < tol


@pytest.mark.parametrize("scheme", [INT4, {**INT4, "activation_dtype": "int8", "quantize_embedding": True}],
                         ids=["int4-weights", "int4-int8act-embedding"])
def test_qat_full_finetune_trains_converts_and_quantizes(make_config, scheme):
    cfg = make_config(qat=scheme, max_steps=12)
    losses = Losses()
    summary = train(cfg, callbacks=[losses])
    out = Path(cfg.train.output_dir)
    assert sum(losses.seen[-3:]) < 0.8 * sum(losses.seen[:3]), losses.seen

    # output_dir holds plain full-precision layers (no fake-quantization module survives)
    plain = AutoModelForCausalLM.from_pretrained(out)
    assert not fake_quantizers(plain) and quantized_weight_types(plain) == {"Parameter"}

    # the quantized copy loads with plain transformers, quantized, and computes what QAT trained with
    tokenizer = AutoTokenizer.from_pretrained(out / "quantized")
    inputs = batch(tokenizer)
    quantized = AutoModelForCausalLM.from_pretrained(out / "quantized")
    assert summary["quantized"] == str(out / "quantized")
    assert "IntxUnpackedToInt8Tensor" in quantized_weight_types(quantized)
    if scheme.get("quantize_embedding"):
        assert type(quantized.get_input_embeddings().weight).__name__ == "IntxUnpackedToInt8Tensor"
        assert type(quantized.get_output_embeddings().weight).__name__ == "IntxUnpackedToInt8Tensor"
    with torch.no_grad():
        logits = quantized(**inputs).logits
        float_logits = plain(**inputs).logits
    assert_close(logits, fake_quantized_logits(out, scheme, inputs), 1e-4)
    assert ((logits - float_logits).norm() / float_logits.norm()).item() > 1e-3  # it really is quantized

    # saved -> reloaded: exactly the logits of the model as quantized in memory; and it generates
    assert torch.equal(logits, quantized_in_memory_logits(out, scheme, inputs))
    generated = quantized.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] == inputs["input_ids"].shape[1] + 4


def test_qat_with_lora_trains_around_the_rounded_base(make_config, tiny_model):
    from peft import PeftModel

    cfg = make_config(qat=INT4, max_steps=10, **LORA)
    train(cfg)
    out = Path(cfg.train.output_dir)

    # the adapter loads in plain peft over the untouched base
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    merged = PeftModel.from_pretrained(base, out).merge_and_unload()
    merged.save_pretrained(out / "merged-by-peft")
    inputs = batch(AutoTokenizer.from_pretrained(out))
    with torch.no_grad():
        logits = AutoModelForCausalLM.from_pretrained(out / "quantized")(**inputs).logits
    # the quantized copy is the merged model, quantized as the training simulated
    assert_close(logits, fake_quantized_logits(out / "merged-by-peft", INT4, inputs), 1e-4)


def test_fake_quantization_waits_for_its_step(make_config):
    """Identical seeds and data: with `fake_quant_after_n_steps: 3` the first 3 losses equal a
    plain run's exactly, and later ones do not; without the delay the very first differs."""
    runs = {}
    for name, keys in {"plain": {}, "delayed": {"qat": {**INT4, "fake_quant_after_n_steps": 3}},
                       "at-once": {"qat": INT4}}.items():
        losses = Losses()
        train(make_config(max_steps=6, output_dir=str(Path(make_config().train.output_dir) / name), **keys),
              callbacks=[losses])
        runs[name] = losses.seen
    plain, delayed, at_once = runs["plain"], runs["delayed"], runs["at-once"]
    assert delayed[:3] == plain[:3], (delayed, plain)
    assert all(d != p for d, p in zip(delayed[3:], plain[3:])), (delayed, plain)
    assert at_once[0] != plain[0]


def test_axo_quantize_command_writes_a_model_that_generates(make_config, tmp_path):
    """PTQ of a trained model without QAT, from the command line, int8 weights and activations."""
    cfg = make_config(max_steps=3)
    train(cfg)
    raw = {**yaml.safe_load(Path(cfg.train.output_dir, "axo_config.yml").read_text()),
           "quantization": {"weight_dtype": "int8", "activation_dtype": "int8", "group_size": None}}
    path = tmp_path / "ptq.yml"
    path.write_text(yaml.safe_dump({k: v for k, v in raw.items() if v is not None}))
    run = subprocess.run([sys.executable, "-m", "axo", "quantize", str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    out = Path(cfg.train.output_dir) / "quantized"
    assert f"quantized model written to {out}" in run.stdout
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert "IntxUnpackedToInt8Tensor" in quantized_weight_types(model)
    inputs = batch(tokenizer)
    with torch.no_grad():
        assert_close(model(**inputs).logits, AutoModelForCausalLM.from_pretrained(cfg.train.output_dir)(
            **inputs).logits, 0.05)  # int8 stays close to full precision
    assert model.generate(**inputs, max_new_tokens=3, do_sample=False).shape[1] == inputs["input_ids"].shape[1] + 3


def test_quantize_without_a_scheme_says_which_key_to_add(make_config):
    from axo.export.quantize import quantize_model

    with pytest.raises(AxoError, match="add a `quantization:` block"):
        quantize_model(make_config())


def test_group_size_that_does_not_divide_a_layer_is_named(make_config):
    cfg = make_config(qat={"weight_dtype": "int4", "group_size": 24})
    with pytest.raises(AxoError, match=r"`qat.group_size: 24` does not divide the input width 32"):
        train(cfg)


def test_qat_scheme_mistakes_are_config_errors(tiny_model, alpaca_file):
    from axo.errors import ConfigError

    base = {"base_model": str(tiny_model), "datasets": [{"path": str(alpaca_file), "type": "alpaca"}]}
    for extra, expected in [
        ({"quantization": {"weight_dtype": "nvfp4"}}, "`quantization.weight_dtype`: 'nvfp4' is not supported by "
         "axo for the quantized copy (`qat:` trains for it"),
        ({"qat": {"weight_dtype": "nvfp4", "group_size": 32}}, "`qat.group_size`: nvfp4 shares one scale per 16"),
        ({"qat": {"weight_dtype": "ternary", "activation_dtype": "nvfp4"}},
         "`qat.activation_dtype`: nvfp4 activations go with nvfp4 weights"),
        ({"qat": {"weight_dtype": "ternary", "group_size": 32}}, "`qat.group_size`: ternary weights have one scale"),
        ({"qat": {"weight_dtyp": "int4"}}, "`qat.weight_dtyp`: unknown key; did you mean `weight_dtype`?"),
        ({"quantization": {"activation_dtype": "int4"}}, "use int8, or null for weight-only"),
        ({"qat": INT4, "load_in_8bit": True, "adapter": "lora"}, "`load_in_8bit` loads them already quantized"),
    ]:
        with pytest.raises(ConfigError) as err:
            validate({**base, **extra})
        assert expected in err.value.problems[0], err.value.problems
