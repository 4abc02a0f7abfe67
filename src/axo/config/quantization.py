"""Loading the base model's weights quantized (bitsandbytes), for QLoRA and 8-bit LoRA."""

from typing import Any

from pydantic import Field, model_validator

from axo.config.base import Area


class QuantizationConfig(Area):
    load_in_8bit: bool = Field(False, description="Load linear weights in 8 bits (bitsandbytes LLM.int8).")
    load_in_4bit: bool = Field(False, description="Load linear weights in 4 bits (bitsandbytes NF4), for QLoRA.")
    bnb_config_kwargs: dict[str, Any] | None = Field(
        None, description="Extra BitsAndBytesConfig arguments, e.g. {bnb_4bit_quant_type: fp4, "
        "bnb_4bit_use_double_quant: false, llm_int8_skip_modules: [lm_head]}."
    )

    @model_validator(mode="after")
    def _one_width(self):
        if self.load_in_8bit and self.load_in_4bit:
            raise ValueError("`load_in_8bit` and `load_in_4bit` exclude each other; keep one")
        return self

    @property
    def quantized(self) -> bool:
        return self.load_in_8bit or self.load_in_4bit
