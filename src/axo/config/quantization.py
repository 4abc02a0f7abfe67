"""Loading the base model's weights quantized: bitsandbytes (QLoRA, 8-bit LoRA) or torchao
weight-only, for LoRA on a smaller base."""

from typing import Any, Literal

from pydantic import Field, model_validator

from axo.config.base import Area

TORCHAO_WEIGHTS = ("int8", "int4")


class QuantizationConfig(Area):
    load_in_8bit: bool = Field(False, description="Load linear weights in 8 bits (bitsandbytes LLM.int8).")
    load_in_4bit: bool = Field(False, description="Load linear weights in 4 bits (bitsandbytes NF4), for QLoRA.")
    bnb_config_kwargs: dict[str, Any] | None = Field(
        None, description="Extra BitsAndBytesConfig arguments, e.g. {bnb_4bit_quant_type: fp4, "
        "bnb_4bit_use_double_quant: false, llm_int8_skip_modules: [lm_head]}."
    )
    model_quantization_config: Literal["TorchAoConfig", "Mxfp4Config", "FineGrainedFP8Config"] | None = Field(
        None, description="transformers quantization config for loading: TorchAoConfig (weight-only, torchao)."
    )
    model_quantization_config_kwargs: dict[str, Any] | None = Field(
        None, description="TorchAoConfig: {weight_dtype: int8 | int4, group_size: 128} (int4 needs a GPU)."
    )

    @model_validator(mode="after")
    def _one_scheme(self):
        chosen = [k for k in ("load_in_8bit", "load_in_4bit") if getattr(self, k)]
        chosen += ["model_quantization_config"] if self.model_quantization_config else []
        if len(chosen) > 1:
            raise ValueError(f"{', '.join(f'`{k}`' for k in chosen)} each quantize the base; keep one")
        if self.model_quantization_config in ("Mxfp4Config", "FineGrainedFP8Config"):
            raise ValueError(f"`model_quantization_config: {self.model_quantization_config}` is not supported "
                             "by axo yet; TorchAoConfig is")
        if self.model_quantization_config:
            kwargs = self.model_quantization_config_kwargs or {}
            unknown = set(kwargs) - {"weight_dtype", "group_size"}
            if unknown or kwargs.get("weight_dtype", "int8") not in TORCHAO_WEIGHTS:
                raise ValueError("`model_quantization_config_kwargs` for TorchAoConfig take weight_dtype "
                                 "(int8 or int4) and group_size")
        return self

    @property
    def quantized(self) -> bool:
        return self.load_in_8bit or self.load_in_4bit or self.model_quantization_config is not None

    @property
    def bitsandbytes(self) -> bool:
        return self.load_in_8bit or self.load_in_4bit
