"""Which model and tokenizer to load, and how."""

from typing import Literal

from pydantic import Field, field_validator

from axo.config.base import Area

# Sequence classification and image-text-to-text come with the model-loading issue; any
# transformers `*ForCausalLM` class (LlamaForCausalLM, ...) works, as Axolotl configs use them.
CAUSAL_LM_SUFFIX = "ForCausalLM"


class ModelConfig(Area):
    base_model: str = Field(description="Local path or hub id of the model to fine-tune.")
    base_model_config: str | None = Field(
        None, description="Where to read the model config from, if not `base_model`."
    )
    model_type: str = Field(
        "AutoModelForCausalLM",
        description="transformers class used to load the model (Axolotl: `model_type`).",
    )
    tokenizer_type: str = Field("AutoTokenizer", description="transformers tokenizer class.")
    tokenizer_config: str | None = Field(
        None, description="Where to read the tokenizer from, if not `base_model`."
    )
    trust_remote_code: bool = Field(
        False, description="Run model code shipped with the checkpoint. Off unless set."
    )
    reinit_weights: bool = Field(
        False,
        description="Build the model from its config with fresh random weights instead of loading them.",
    )
    attn_implementation: Literal["eager", "sdpa"] = Field(
        "sdpa", description="Attention backend."
    )
    bf16: Literal["auto"] | bool = Field(
        "auto",
        description="bfloat16 training. `auto` uses it where the hardware supports it, else fp32.",
    )
    fp16: bool = Field(False, description="float16 mixed precision (GPU only).")

    @field_validator("model_type")
    @classmethod
    def _known_class(cls, value: str) -> str:
        if not value.endswith(CAUSAL_LM_SUFFIX):
            raise ValueError(f"model class {value!r} is not supported yet; use AutoModelForCausalLM "
                             f"or a transformers class ending in {CAUSAL_LM_SUFFIX}")
        return value

    @field_validator("tokenizer_type")
    @classmethod
    def _tokenizer_class(cls, value: str) -> str:
        if not value.endswith(("Tokenizer", "TokenizerFast")):
            raise ValueError(f"{value!r} is not a tokenizer class name, e.g. AutoTokenizer")
        return value

    @property
    def config_path(self) -> str:
        return self.base_model_config or self.base_model

    @property
    def tokenizer_path(self) -> str:
        return self.tokenizer_config or self.base_model
