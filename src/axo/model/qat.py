"""Quantization-aware training: linear layers (and, on request, the embeddings) are swapped for
fake-quantized ones that round their weights (and activations) the way the quantized model will,
while gradients flow as if they did not (straight-through). At the end the swap is undone,
leaving plain full-precision layers whose weights sit where rounding hurts least.

int4/int8 use torchao's QAT layers. FP4 (NVFP4, MXFP4) and ternary weights use `RoundedLinear`
with torchao's own FP4 rounding: torchao's NVFP4 QAT layer computes its forward as a real FP4
matmul, which only Blackwell GPUs have. FP4 products are exact in fp32, so rounding the operands
and multiplying in full precision is the same forward anywhere (up to summation order), at the
speed of an ordinary matmul."""

import logging

import torch
from transformers import TrainerCallback

from axo.config.quantization import FP4_BLOCK, QAT_ONLY_WEIGHTS, QATScheme

log = logging.getLogger("axo")
EPS = 1e-5


class Rounding(torch.nn.Module):
    """One fake quantizer: rounds in the forward pass, passes the gradient straight through."""

    def __init__(self, rounding):
        super().__init__()
        self.rounding = rounding
        self.enabled = True

    def forward(self, x):
        return x + (self.rounding(x) - x).detach() if self.enabled else x


class RoundedLinear(torch.nn.Linear):
    """nn.Linear whose weight (and input) pass through `Rounding` first. Made by swapping the
    class of a loaded layer in place, so parameters, ties and FSDP's sharding stay as they were."""

    def forward(self, x):
        if self.activation_fake_quantizer is not None:
            x = self.activation_fake_quantizer(x)
        return torch.nn.functional.linear(x, self.weight_fake_quantizer(self.weight), self.bias)


def round_fp4(fmt: str):
    """Round-trip through torchao's NVFP4 / MXFP4 tensors: blocks of 16 / 32 values along the
    input dimension share a scale (NVFP4: e4m3 block scales under one fp32 scale per tensor,
    as torchao's NVFP4 QAT; MXFP4: power-of-two scales, torchao's MX QAT defaults)."""
    def rounding(x):
        flat = x.reshape(-1, x.shape[-1])
        if fmt == "nvfp4":
            from torchao.prototype.mx_formats.nvfp4_tensor import NVFP4Tensor, per_tensor_amax_to_scale

            rounded = NVFP4Tensor.to_nvfp4(flat, per_tensor_scale=per_tensor_amax_to_scale(flat.abs().max()))
        else:
            from torchao.prototype.mx_formats.mx_tensor import MXTensor
            from torchao.prototype.qat.mx import MXFakeQuantizeConfig

            c = MXFakeQuantizeConfig()
            rounded = MXTensor.to_mx(flat, elem_dtype=c.dtype, block_size=FP4_BLOCK[fmt],
                                     scaling_mode=c.scaling_mode, kernel_preference=c.kernel_preference)
        return rounded.dequantize(x.dtype).reshape(x.shape)
    return rounding


def round_ternary(weight):
    """BitNet b1.58: each row to -1, 0 or 1 times its mean magnitude."""
    scale = weight.abs().mean(dim=-1, keepdim=True).clamp_min(EPS)
    return (weight / scale).round().clamp(-1, 1) * scale


def round_int8_per_token(x):
    scale = x.abs().amax(dim=-1, keepdim=True).clamp_min(EPS) / 127
    return (x / scale).round().clamp(-128, 127) * scale


def prepare_qat(model, scheme: QATScheme) -> int:
    """Fake-quantize in place the layers the quantized copy will quantize (see
    `to_torchao_export_config`): every linear layer but the output head, and with
    `quantize_embedding` the head and the input embedding too. Returns how many were swapped.
    Runs before adapters are added, so LoRA learns around the rounded base weights."""
    import torch
    from torchao.quantization import quantize_
    from torchao.quantization.qat import QATConfig

    from axo.model.quantization import to_torchao_scheme

    _check_group_size(model, scheme)
    head, embed = model.get_output_embeddings(), model.get_input_embeddings()
    if scheme.weight_dtype in QAT_ONLY_WEIGHTS:
        return _prepare_rounded(model, scheme, head, embed)
    linear, embedding = to_torchao_scheme(scheme)
    before = len(fake_quantizers(model))
    quantize_(model, QATConfig(linear, step="prepare"), filter_fn=lambda module, _: isinstance(
        module, torch.nn.Linear) and (module is not head or scheme.quantize_embedding))
    if scheme.quantize_embedding:
        quantize_(model, QATConfig(embedding, step="prepare"), filter_fn=lambda module, _: module is embed)
    swapped = len(fake_quantizers(model)) - before
    log.info("QAT: fake-quantizing %d layers to %s weights%s", swapped, scheme.weight_dtype,
             " and int8 activations" if scheme.activation_dtype else "")
    return swapped


def _prepare_rounded(model, scheme: QATScheme, head, embed) -> int:
    """FP4 and ternary: every linear layer but the output head (as Axolotl, which keeps the head in
    high precision for these); with ternary's `quantize_embedding`, the input embedding gets
    torchao's int8 per-row rounding."""
    from axo.errors import AxoError

    fmt, acts = scheme.weight_dtype, scheme.activation_dtype
    weights = round_ternary if fmt == "ternary" else round_fp4(fmt)
    inputs = round_int8_per_token if acts == "int8" else round_fp4(acts) if acts else None
    if scheme.quantize_embedding and head is not None and head.weight is embed.weight:
        raise AxoError("`qat.quantize_embedding` with ternary weights rounds the input embedding to int8 but "
                       "keeps the output head in full precision, and this model ties the two. Fix: set "
                       "`quantize_embedding: false`, or train a model with untied embeddings.")
    swapped = 0
    for module in list(model.modules()):
        if type(module) is torch.nn.Linear and module is not head:
            module.__class__ = RoundedLinear
            module.weight_fake_quantizer = Rounding(weights)
            module.activation_fake_quantizer = Rounding(inputs) if inputs else None
            swapped += 1
    if scheme.quantize_embedding:
        _round_embedding(model, embed)
    log.info("QAT: fake-quantizing %d layers to %s weights%s", swapped, fmt, f" and {acts} activations" if acts else "")
    return swapped


def _round_embedding(model, embed) -> None:
    from torchao.quantization import IntxWeightOnlyConfig, quantize_
    from torchao.quantization.granularity import PerAxis
    from torchao.quantization.qat import QATConfig

    config = IntxWeightOnlyConfig(weight_dtype=torch.int8, granularity=PerAxis(0))
    quantize_(model, QATConfig(config, step="prepare"), filter_fn=lambda module, _: module is embed)


def _check_group_size(model, scheme: QATScheme) -> None:
    """torchao fails deep inside a forward pass when a group does not divide a layer's width."""
    from axo.errors import AxoError

    block = FP4_BLOCK.get(scheme.weight_dtype) or (scheme.weight_dtype != "ternary" and scheme.group_size)
    if not block:
        return
    for name, module in model.named_modules():
        width = module.in_features if isinstance(module, torch.nn.Linear) else None
        if width and width % block:
            fix = ("this format needs widths divisible by its block" if scheme.weight_dtype in FP4_BLOCK else
                   "use a group size that divides every layer's width (e.g. 32), or null for one scale per row")
            raise AxoError(f"`qat.group_size: {block}` does not divide the input width {width} of {name}. "
                           f"Fix: {fix}.")


def fake_quantizers(model) -> list:
    """The fake quantizer modules (weights' and activations') of every fake-quantized layer."""
    return [m for m in model.modules() if isinstance(m, Rounding)
            or type(m).__module__.startswith("torchao.quantization.qat") and hasattr(m, "enabled")]


def set_fake_quant(model, enabled: bool) -> None:
    for quantizer in fake_quantizers(model):
        quantizer.enabled = enabled


def finish_qat(model) -> int:
    """Make fake-quantized layers plain nn.Linear / nn.Embedding again, holding the trained
    weights, so the model saves and loads in plain transformers. In place, as the swap in: the
    same modules and parameters, so ties hold and FSDP's hooks and shards are untouched (torchao's
    own convert builds new modules, which FSDP would not know). Returns how many were restored."""
    count = 0
    for module in list(model.modules()):  # the loop removes submodules
        plain = next((c for c in (torch.nn.Linear, torch.nn.Embedding) if isinstance(module, c)), None)
        if plain is None or type(module) is plain or not hasattr(module, "weight_fake_quantizer"):
            continue
        module.__class__ = plain
        for name in ("weight_fake_quantizer", "activation_fake_quantizer"):
            if hasattr(module, name):
                delattr(module, name)
        count += 1
    if count:
        log.info("QAT: restored %d layers to full precision for saving", count)
    return count


class DelayFakeQuant(TrainerCallback):
    """`fake_quant_after_n_steps`: full-precision steps first, then fake quantization. Decided
    from the global step at every step, so a resumed run picks up the right phase."""

    def __init__(self, steps: int):
        self.steps = steps
        self.enabled = None

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        enabled = state.global_step >= self.steps
        if enabled != self.enabled:
            set_fake_quant(model, enabled)
            if self.enabled is not None or not enabled:
                log.info("QAT: fake quantization %s at step %d", "on" if enabled else "off", state.global_step)
            self.enabled = enabled
