"""bitsandbytes settings for a quantized base model."""

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
