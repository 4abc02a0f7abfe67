"""QAT for formats axo writes no quantized copy of: NVFP4 and MXFP4 (FP4 blocks of 16 / 32 that
share a scale) and ternary weights (BitNet b1.58). The rounding lands on each format's grid, MXFP4
computes exactly what torchao's own MX QAT layer computes, gradients pass straight through, and a
run trains and leaves a plain model."""

import logging
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from axo.config.quantization import QATScheme
from axo.errors import AxoError
from axo.model.qat import RoundedLinear, fake_quantizers, finish_qat, prepare_qat
from axo.train.sft import train
from conftest import Losses

FP4_GRID = torch.tensor([0, 0.5, 1, 1.5, 2, 3, 4, 6])


def layer(model) -> RoundedLinear:
    return model.model.layers[0].mlp.down_proj


def rounded_weight(module) -> torch.Tensor:
    with torch.no_grad():
        return module.weight_fake_quantizer(module.weight)


def on_fp4_grid(values: torch.Tensor) -> bool:
    """Some scale c puts every |value| / c on FP4's grid (the block's largest value rounds to
    one of the grid's top values, so c is max / g for one g of the grid)."""
    magnitudes = values.abs()
    for g in FP4_GRID[1:]:
        scaled = magnitudes / (magnitudes.max() / g)
        if (scaled[:, None] - FP4_GRID[None]).abs().min(dim=1).values.max() < 1e-4:
            return True
    return False


@pytest.mark.parametrize("fmt,block", [("nvfp4", 16), ("mxfp4", 32)])
def test_fp4_weights_land_on_the_grid_of_each_block(tiny_model, fmt, block):
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    original = layer(model).weight.detach().clone()
    assert prepare_qat(model, QATScheme(weight_dtype=fmt, activation_dtype=fmt)) == 14  # 7 per layer, not the head
    assert type(model.lm_head) is torch.nn.Linear
    rounded = rounded_weight(layer(model))
    blocks = rounded.reshape(-1, block)
    assert all(on_fp4_grid(b) for b in blocks)
    # one scale per block, not per row: rows hold more distinct magnitudes than one FP4 grid
    assert max(len(row.abs().unique()) for row in rounded) > len(FP4_GRID)
    assert ((rounded - original).norm() / original.norm()).item() < 0.2
    assert not torch.equal(rounded, original)


def test_mxfp4_computes_what_torchaos_mx_qat_layer_computes(tiny_model):
    from torchao.prototype.qat.mx import MXFakeQuantizeConfig, MXFakeQuantizedLinear

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    plain = layer(model)
    reference = MXFakeQuantizedLinear.from_linear(plain, MXFakeQuantizeConfig(), MXFakeQuantizeConfig())
    prepare_qat(model, QATScheme(weight_dtype="mxfp4", activation_dtype="mxfp4"))
    x = torch.randn(2, 5, plain.in_features)
    torch.testing.assert_close(layer(model)(x), reference(x), rtol=1e-6, atol=1e-6)


def test_ternary_rows_and_int8_tokens_with_straight_through_gradients(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    prepare_qat(model, QATScheme(weight_dtype="ternary", activation_dtype="int8"))
    module = layer(model)
    rounded = rounded_weight(module)
    for row, latent in zip(rounded, module.weight.detach()):
        scale = latent.abs().mean()
        assert set((row / scale).round().tolist()) <= {-1.0, 0.0, 1.0}
        torch.testing.assert_close(row.abs().max(), scale)

    x = torch.randn(3, module.in_features, requires_grad=True)
    step = x.detach().abs().amax(dim=-1, keepdim=True) / 127
    tokens = (x.detach() / step).round() * step  # int8 per token
    out = module(x)
    torch.testing.assert_close(out, tokens @ rounded.T)
    grad = torch.randn_like(out)
    out.backward(grad)
    torch.testing.assert_close(module.weight.grad, grad.T @ tokens)  # as if the rounding were not there
    torch.testing.assert_close(x.grad, grad @ rounded)


def test_ternary_embedding_needs_an_untied_head(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    with pytest.raises(AxoError, match="ties the two"):
        prepare_qat(model, QATScheme(weight_dtype="ternary", quantize_embedding=True))
    model = AutoModelForCausalLM.from_pretrained(tiny_model, tie_word_embeddings=False)
    prepare_qat(model, QATScheme(weight_dtype="ternary", quantize_embedding=True))
    assert type(model.get_input_embeddings()).__name__ == "FakeQuantizedEmbedding"
    assert finish_qat(model) == 15 and not fake_quantizers(model)


@pytest.mark.parametrize("scheme", [{"weight_dtype": "nvfp4", "activation_dtype": "nvfp4", "group_size": 16},
                                    {"weight_dtype": "mxfp4", "activation_dtype": "mxfp4", "group_size": 32},
                                    {"weight_dtype": "ternary", "activation_dtype": "int8"}],
                         ids=["nvfp4", "mxfp4", "ternary"])
def test_fp4_and_ternary_qat_train_and_leave_a_plain_model(make_config, scheme, caplog):
    cfg = make_config(qat=scheme, max_steps=8, learning_rate=1e-2)
    losses = Losses()
    with caplog.at_level(logging.INFO, logger="axo"):
        summary = train(cfg, callbacks=[losses])
    out = Path(cfg.train.output_dir)
    plain = AutoModelForCausalLM.from_pretrained(out)
    assert not fake_quantizers(plain) and all(type(m) in (torch.nn.Linear,) for m in plain.modules()
                                              if isinstance(m, torch.nn.Linear))
    assert "quantized" not in summary and not (out / "quantized").exists()
    assert f"QAT: fake-quantizing 14 layers to {scheme['weight_dtype']} weights" in caplog.text
    assert f"no quantized copy of {scheme['weight_dtype']}" in caplog.text
    assert sum(losses.seen[-2:]) < sum(losses.seen[:2]), losses.seen
