"""Which model, tokenizer and processor to load, and how."""

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from axo.config.base import Area
from axo.config.compat import COMBINATIONS

# What axo trains, by the class-name ending transformers uses for it.
# transformers' causal LM classes named before the ForCausalLM convention (Axolotl's GPT-2 configs name them)
LM_HEAD_CLASSES = ("GPT2LMHeadModel", "OpenAIGPTLMHeadModel", "CTRLLMHeadModel", "XLNetLMHeadModel",
                   "TransfoXLLMHeadModel")
TASKS = {
    "ForCausalLM": "causal_lm",
    "ForSequenceClassification": "sequence_classification",
    "ForTokenClassification": "token_classification",  # process reward models
    # Models a processor feeds images or audio (Llava, Gemma 3, Qwen2-Audio...): their own classes end in
    # ForConditionalGeneration; AutoModelForMultimodalLM covers image-text and audio-text ones alike.
    "ForImageTextToText": "multimodal_lm",
    "ForMultimodalLM": "multimodal_lm",
    "ForConditionalGeneration": "multimodal_lm",
}
Attention = Literal["eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention"]
HUB_KERNEL = re.compile(r"^[\w.-]+/[\w.-]+(:[\w.-]+)?$")  # e.g. kernels-community/flash-attn


class SpecialTokens(Area):
    """`special_tokens:` set or replace the tokenizer's special tokens."""

    bos_token: str | None = None
    eos_token: str | None = None
    pad_token: str | None = None
    unk_token: str | None = None
    additional_special_tokens: list[str] | None = None


class ModelConfig(Area):
    base_model: str = Field(description="Local path or hub id of the model to fine-tune, or a .gguf file (read "
                            "dequantized, once, into axo's cache).")
    gguf_file: str | None = Field(None, description="A GGUF file in the `base_model` folder to read the weights, "
                                  "config and tokenizer from (dequantized, once, into axo's cache).")
    base_model_config: str | None = Field(None, description="Where to read the model config from, if not `base_model`.")
    model_type: str = Field(
        "AutoModelForCausalLM",
        description="transformers class that loads the model: AutoModelForCausalLM, "
        "AutoModelForSequenceClassification, AutoModelForMultimodalLM (images or audio), or a model-specific class. "
        "Unset, a config that sets `processor_type` (as Axolotl's multimodal ones do) means AutoModelForMultimodalLM.",
    )
    model_revision: str | None = Field(None, description="Hub revision (branch, tag or commit) of the model.")
    num_labels: int | None = Field(None, gt=0, description="Output labels of a sequence-classification head.")
    overrides_of_model_config: dict[str, Any] | None = Field(
        None, description="Values that replace the model config's (Axolotl: `model_config`), e.g. rope_scaling."
    )
    overrides_of_model_kwargs: dict[str, Any] | None = Field(
        None, description="Extra keyword arguments for from_pretrained (Axolotl: `model_kwargs`)."
    )
    tokenizer_type: str = Field("AutoTokenizer", description="transformers tokenizer class.")
    tokenizer_config: str | None = Field(None, description="Where to read the tokenizer from, if not `base_model`.")
    processor_type: str = Field("AutoProcessor", description="Processor class of a multimodal (image or audio) model.")
    processor_kwargs: dict[str, Any] | None = Field(
        None, description="Options of a multimodal model's processor, set when it loads and saved with the trained "
        "model: how images are split, resized or cropped, e.g. {do_pan_and_scan: true} (Gemma 3), {max_pixels: "
        "1003520} (Qwen2-VL). A name no part of the processor knows is an error.")
    trust_remote_code: bool = Field(False, description="Run model code shipped with the checkpoint. Off unless set.")
    llama4_linearized_experts: bool = Field(
        False, description="The checkpoint is one of Axolotl's linearized Llama 4 ones: each expert's projections are "
        "separate Linear layers (so LoRA and 4-bit quantization reach each expert). `axo merge-lora` writes the "
        "usual fused layout.")
    reinit_weights: bool = Field(
        False, description="Build the model from its config with fresh random weights instead of loading them."
    )
    device_map: str | dict[str, Any] | None = Field(
        None, description="Where weights go: auto, cpu, cuda:0, or a module -> device mapping."
    )
    max_memory: dict[str | int, int | str] | None = Field(
        None, description="Most memory per device for device_map auto, e.g. {0: 70GiB, cpu: 100GiB}."
    )
    low_cpu_mem_usage: bool | None = Field(None, description="Load weights without a full extra copy in RAM.")
    attn_implementation: str = Field(
        "sdpa", description="Attention backend: eager, sdpa, flash_attention_2, flash_attention_3, "
        "flex_attention, or a hub kernel (org/name)."
    )
    bf16: Literal["auto", "full"] | bool = Field(
        "auto", description="bfloat16 training. `auto` uses it where the hardware supports it, else fp32. A full "
        "fine-tune keeps fp32 master weights (bf16 math); `full` trains the bf16 weights themselves (half the "
        "memory, but small updates round away)."
    )
    fp16: bool = Field(False, description="float16 mixed precision (GPU only).")
    tf32: Literal["auto"] | bool = Field("auto", description="TF32 matmuls on Ampere+ GPUs (`auto`: where available).")
    special_tokens: SpecialTokens | None = Field(None, description="Set the tokenizer's special tokens.")
    tokens: list[str] | None = Field(None, description="New tokens to add to the vocabulary (embeddings are resized).")
    tokenizer_use_fast: bool = Field(
        True, description="The fast (Rust) tokenizer; axo needs it to place label masks exactly.")
    tokenizer_use_mistral_common: bool = Field(
        False, description="Mistral's own tokenizer (tekken.json, through the mistral-common package): axo trains "
        "with the fast tokenizer transformers builds from it and the chat template mistral-common writes, and "
        "checks at load that they encode a conversation to exactly mistral-common's token ids.")
    tokenizer_legacy: bool | None = Field(
        None, description="SentencePiece tokenizers' `legacy` mode (how text after special tokens is split).")
    resize_token_embeddings_to_32x: bool = Field(
        False, description="Round the embedding rows up to a multiple of 32 (faster matmuls on GPUs).")
    mean_resizing_embeddings: bool = Field(
        True, description="New embedding rows start at the mean of the old ones (else transformers' random init).")
    added_tokens_overrides: dict[int, str] | None = Field(
        None, description="Rename existing added tokens by id, e.g. {128011: '<|im_start|>'}."
    )

    @field_validator("model_type")
    @classmethod
    def _known_task(cls, value: str) -> str:
        if not value.isidentifier():
            raise ValueError(f"{value!r} is not a class name")
        if not any(value.endswith(suffix) for suffix in TASKS) and value not in LM_HEAD_CLASSES:
            raise ValueError(f"model class {value!r} is not supported yet; use a class ending in "
                             + ", ".join(TASKS) + " (e.g. AutoModelForCausalLM). " + COMBINATIONS["model_class"][1])
        return value

    @field_validator("attn_implementation")
    @classmethod
    def _attention(cls, value: str) -> str:
        if value in Attention.__args__ or HUB_KERNEL.match(value):
            return value
        raise ValueError(f"unknown attention backend {value!r}; use one of "
                         + ", ".join(Attention.__args__) + ", or a hub kernel like kernels-community/flash-attn")

    @field_validator("tokenizer_use_fast")
    @classmethod
    def _fast(cls, value: bool) -> bool:
        if not value:
            raise ValueError("axo needs the fast (Rust) tokenizer to place label masks exactly; remove it")
        return value

    @field_validator("tokenizer_type", "processor_type")
    @classmethod
    def _class_name(cls, value: str) -> str:
        if not value.isidentifier():
            raise ValueError(f"{value!r} is not a class name")
        return value

    @model_validator(mode="before")
    @classmethod
    def _processor_means_multimodal(cls, data):
        # Axolotl picks its multimodal loader from `processor_type` alone; its configs name no class.
        if isinstance(data, dict) and data.get("processor_type") and not data.get("model_type"):
            data = {**data, "model_type": "AutoModelForMultimodalLM"}
        return data

    def check(self):
        if self.gguf_file and self.base_model.lower().endswith(".gguf"):
            yield ("gguf_file",), "`base_model` already names a .gguf file: remove one of the two"
        if self.num_labels is not None and self.task not in ("sequence_classification", "token_classification"):
            yield ("num_labels",), ("needs a classification `model_type`, e.g. AutoModelForSequenceClassification "
                                    "(or remove it)")

    @property
    def task(self) -> str:
        if self.model_type in LM_HEAD_CLASSES:
            return "causal_lm"
        return next(task for suffix, task in TASKS.items() if self.model_type.endswith(suffix))

