"""Quantization-aware training through torchao: linear layers (and, on request, the embeddings)
are swapped for fake-quantized ones that round their weights (and activations) the way the
quantized model will, while gradients flow as if they did not (straight-through). At the end the
swap is undone, leaving plain full-precision layers whose weights sit where rounding hurts least."""

import logging

from transformers import TrainerCallback

from axo.config.quantization import QATScheme

log = logging.getLogger("axo")


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
    linear, embedding = to_torchao_scheme(scheme)
    head, embed = model.get_output_embeddings(), model.get_input_embeddings()
    before = len(fake_quantizers(model))
    quantize_(model, QATConfig(linear, step="prepare"), filter_fn=lambda module, _: isinstance(
        module, torch.nn.Linear) and (module is not head or scheme.quantize_embedding))
    if scheme.quantize_embedding:
        quantize_(model, QATConfig(embedding, step="prepare"), filter_fn=lambda module, _: module is embed)
    swapped = len(fake_quantizers(model)) - before
    log.info("QAT: fake-quantizing %d layers to %s weights%s", swapped, scheme.weight_dtype,
             " and int8 activations" if scheme.activation_dtype else "")
    return swapped


def _check_group_size(model, scheme: QATScheme) -> None:
    """torchao fails deep inside a forward pass when a group does not divide a layer's width."""
    import torch

    from axo.errors import AxoError

    if not scheme.group_size:
        return
    for name, module in model.named_modules():
        width = module.in_features if isinstance(module, torch.nn.Linear) else None
        if width and width % scheme.group_size:
            raise AxoError(f"`qat.group_size: {scheme.group_size}` does not divide the input width {width} of "
                           f"{name}. Fix: use a group size that divides every layer's width (e.g. 32), or "
                           "null for one scale per output row.")


def fake_quantizers(model) -> list:
    """The fake quantizer modules (weights' and activations') of every fake-quantized layer."""
    return [m for m in model.modules()
            if type(m).__module__.startswith("torchao.quantization.qat") and hasattr(m, "enabled")]


def set_fake_quant(model, enabled: bool) -> None:
    for quantizer in fake_quantizers(model):
        quantizer.enabled = enabled


def finish_qat(model) -> int:
    """Swap fake-quantized layers back to plain nn.Linear / nn.Embedding holding the trained
    weights (tied weights stay tied), so the model saves and loads in plain transformers.
    Returns how many were swapped."""
    from torchao.quantization import quantize_
    from torchao.quantization.qat import FakeQuantizedEmbedding, FakeQuantizedLinear, QATConfig

    fake = (FakeQuantizedLinear, FakeQuantizedEmbedding)
    count = sum(isinstance(m, fake) for m in model.modules())
    if count:
        quantize_(model, QATConfig(step="convert"), filter_fn=lambda module, _: isinstance(module, fake))
        assert not any(isinstance(m, fake) for m in model.modules())
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
