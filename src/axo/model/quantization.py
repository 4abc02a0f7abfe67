"""Quantization configs for loading the base model: one mapping function per library."""

from axo.config.quantization import QuantizationConfig, TorchAOScheme


def to_bnb_config(q: QuantizationConfig, compute_dtype):
    """QLoRA's defaults (NF4, double quantization, compute in the training dtype), then the user's
    `bnb_config_kwargs` on top."""
    from transformers import BitsAndBytesConfig

    if q.load_in_4bit:
        base = {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
                "bnb_4bit_compute_dtype": compute_dtype, "bnb_4bit_quant_storage": compute_dtype}
    else:
        base = {"load_in_8bit": True}
    return BitsAndBytesConfig(**{**base, **(q.bnb_config_kwargs or {})})


def to_torchao_config(q: QuantizationConfig):
    """torchao weight-only quantization: int8 (runs on CPU too) or int4 with a group size."""
    from torchao.quantization import Int4WeightOnlyConfig, Int8WeightOnlyConfig
    from transformers import TorchAoConfig

    kwargs = q.model_quantization_config_kwargs or {}
    if kwargs.get("weight_dtype", "int8") == "int4":
        return TorchAoConfig(Int4WeightOnlyConfig(group_size=kwargs.get("group_size", 128)))
    return TorchAoConfig(Int8WeightOnlyConfig(group_size=kwargs["group_size"]) if "group_size" in kwargs
                         else Int8WeightOnlyConfig())


def to_torchao_scheme(scheme: TorchAOScheme):
    """(config for linear layers, config for the input embedding): the torchao post-training
    configs of a `qat:` / `quantization:` block. QAT derives its fake quantization from the same
    pair, so training simulates exactly the rounding the quantized copy will apply. Both are
    unpacked int8 layouts: they run on CPU and save through safetensors."""
    import torch
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, IntxWeightOnlyConfig
    from torchao.quantization.granularity import PerAxis, PerGroup

    bits = getattr(torch, scheme.weight_dtype)
    granularity = PerGroup(scheme.group_size) if scheme.group_size else PerAxis(0)
    weights_only = IntxWeightOnlyConfig(weight_dtype=bits, granularity=granularity)
    if scheme.activation_dtype == "int8":
        linear = Int8DynamicActivationIntxWeightConfig(weight_dtype=bits, weight_granularity=granularity)
    else:
        linear = weights_only
    return linear, weights_only


def to_torchao_export_config(scheme: TorchAOScheme, embedding_name: str):
    """transformers' TorchAoConfig that quantizes a full-precision model as it loads. Saving a
    model quantized in place with `quantize_` fails in torchao 0.18 ("invalid python storage");
    one loaded through this config saves and reloads exactly."""
    from torchao.quantization import FqnToConfig
    from transformers import TorchAoConfig

    linear, embedding = to_torchao_scheme(scheme)
    if not scheme.quantize_embedding:
        return TorchAoConfig(linear)  # transformers leaves the embeddings and the output head alone
    # An empty skip list quantizes the output head too; the input embedding is weights-only.
    return TorchAoConfig(FqnToConfig({embedding_name: embedding, "_default": linear}),
                         include_input_output_embeddings=True, modules_to_not_convert=[])
