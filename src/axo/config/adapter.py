"""Adapters added on top of the loaded model (LoRA here; QLoRA, DoRA come later)."""

from typing import Literal

from pydantic import Field, model_validator

from axo.config.base import Area


class AdapterConfig(Area):
    adapter: Literal["lora"] | None = Field(
        None, description="`lora` trains a LoRA adapter; unset means a full fine-tune."
    )
    lora_r: int = Field(8, gt=0, description="LoRA rank.")
    lora_alpha: int = Field(16, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    lora_target_modules: list[str] | None = Field(
        None, description="Module names to adapt, e.g. [q_proj, v_proj]; unset uses peft's default for the architecture."
    )
    lora_target_linear: bool = Field(
        False, description="Adapt every linear layer except the output head."
    )

    @model_validator(mode="before")
    @classmethod
    def _single_module_as_list(cls, data):
        # Axolotl accepts `lora_target_modules: q_proj`; keep that spelling working.
        if isinstance(data, dict) and isinstance(data.get("lora_target_modules"), str):
            data = {**data, "lora_target_modules": [data["lora_target_modules"]]}
        return data
