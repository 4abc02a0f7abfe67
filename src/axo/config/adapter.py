"""What is trained: a PEFT adapter (LoRA, QLoRA, DoRA, rsLoRA) or (part of) the model itself."""

from typing import Literal

from pydantic import Field, model_validator

from axo.config.base import Area


class AdapterConfig(Area):
    adapter: Literal["lora", "qlora"] | None = Field(
        None, description="`lora`, or `qlora` (LoRA on a 4-bit base, needs load_in_4bit); unset: full fine-tune."
    )
    lora_r: int = Field(8, gt=0, description="LoRA rank.")
    lora_alpha: int = Field(16, gt=0, description="LoRA scaling numerator (scale = alpha / r, or alpha / sqrt(r) with rsLoRA).")
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    lora_target_modules: list[str] | str | None = Field(
        None, description="Module names to adapt, e.g. [q_proj, v_proj], or one regular expression matched against "
        "whole module names (peft's string form), e.g. '.*\\.layers\\.(3|7)\\.self_attn\\.q_proj'; unset uses "
        "peft's default for the architecture."
    )
    lora_target_linear: bool = Field(False, description="Adapt every linear layer except the output head.")
    lora_modules_to_save: list[str] | None = Field(
        None, description="Modules trained in full and saved with the adapter, e.g. [embed_tokens, lm_head]."
    )
    peft_layers_to_transform: list[int] | None = Field(None, description="Only adapt these layer indices.")
    peft_use_dora: bool = Field(False, description="DoRA: weight-decomposed LoRA.")
    peft_use_rslora: bool = Field(False, description="rsLoRA: scale by alpha / sqrt(r).")
    lora_model_dir: str | None = Field(None, description="An adapter to load and keep training.")
    loraplus_lr_ratio: float | None = Field(
        None, gt=0, description="LoRA+: learning rate of the B matrices = ratio x learning_rate."
    )
    loraplus_lr_embedding: float | None = Field(None, gt=0, description="LoRA+: learning rate of embedding adapters.")
    unfrozen_parameters: list[str] | None = Field(
        None, description="Train only these parameters (regular expressions on the base model's parameter "
        "names); with an adapter, only the adapter weights on matching parameters, e.g. [^model.language_model.]"
    )
    freeze_mm_modules: bool = Field(
        False, description="Image-text models: keep the vision (or audio) tower and its projector as loaded; only "
        "the language model trains (its LoRA, with an adapter).")
    lora_target_parameters: list[str] | None = Field(
        None, description="Parameters (not modules) to adapt, e.g. MoE expert weights: peft's target_parameters.")
    lora_fan_in_fan_out: bool = Field(False, description="The layer stores its weight as (in, out), e.g. GPT-2's Conv1D.")
    lora_alpha_pattern: dict[str, float] | None = Field(
        None, description="lora_alpha per module name pattern (peft's alpha_pattern).")
    lora_rank_pattern: dict[str, int] | None = Field(
        None, description="lora_r per module name pattern (peft's rank_pattern).")
    peft_init_lora_weights: bool | str | None = Field(
        None, description="How LoRA starts: true (B = 0), gaussian, pissa, olora, eva... (peft's init_lora_weights).")
    peft_layers_pattern: str | list[str] | None = Field(
        None, description="Name of the layer list that peft_layers_to_transform indexes (peft's layers_pattern).")
    peft_layer_replication: list[list[int]] | None = Field(
        None, description="Layer ranges to stack into a deeper model (peft's layer_replication).")
    peft_trainable_token_indices: list[int] | dict[str, list[int]] | None = Field(
        None, description="Embedding rows trained in full next to LoRA (peft's trainable_token_indices).")

    lisa_n_layers: int | None = Field(
        None, gt=0, description="LISA: a full fine-tune in which only this many decoder layers, drawn at random, "
        "train at a time (the rest of the model always trains).")
    lisa_step_interval: int = Field(20, gt=0, description="LISA: steps between draws of the layers that train.")
    lisa_layers_attribute: str = Field("model.layers", description="LISA: where the model keeps its decoder layers.")

    @model_validator(mode="before")
    @classmethod
    def _single_module_as_list(cls, data):
        # Axolotl accepts `lora_target_modules: q_proj` (one name) and hands a string with regex
        # characters to peft as the regular expression it is.
        target = data.get("lora_target_modules") if isinstance(data, dict) else None
        if isinstance(target, str) and not set(target) & set("*|()[]^$\\+?{}"):
            data = {**data, "lora_target_modules": [target]}
        return data

    def check(self):
        for key in ("loraplus_lr_ratio", "lora_model_dir"):
            if not self.adapter and getattr(self, key):
                yield (key,), "needs `adapter: lora` or `adapter: qlora`"
        if self.lisa_n_layers and (self.adapter or self.unfrozen_parameters):
            yield ("lisa_n_layers",), ("LISA chooses which layers of a full fine-tune train; remove `adapter` / "
                                       "`unfrozen_parameters`, or LISA")
