"""Quantization configs for loading the base model: one mapping function per library."""

from axo.config.quantization import QuantizationConfig


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
