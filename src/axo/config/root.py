"""The root config: one small model per area, composed. YAML keys stay flat (Axolotl's format);
the loader routes each key to the area that owns it."""

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from axo.config.adapter import AdapterConfig
from axo.config.data import DataConfig
from axo.config.logging import LoggingConfig
from axo.config.model import ModelConfig
from axo.config.parallel import ParallelConfig
from axo.config.quantization import QuantizationConfig
from axo.config.rl import RLConfig
from axo.config.training import TrainingConfig


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model: ModelConfig
    quant: QuantizationConfig
    data: DataConfig
    lora: AdapterConfig
    train: TrainingConfig
    logging: LoggingConfig
    rl: RLConfig
    parallel: ParallelConfig

    @model_validator(mode="after")
    def _eval_needs_data(self):
        if self.train.eval_steps and not self.data.has_eval:
            raise ValueError("`eval_steps` is set but there is nothing to evaluate on: "
                             "set `val_set_size` or `test_datasets`, or remove `eval_steps`")
        return self

    @model_validator(mode="after")
    def _quantized_base_needs_adapter(self):
        q, adapter = self.quant, self.lora.adapter
        if adapter == "qlora" and not q.load_in_4bit:
            raise ValueError("`adapter: qlora` trains LoRA on a 4-bit base: set `load_in_4bit: true`")
        if q.load_in_4bit and adapter != "qlora":
            raise ValueError("`load_in_4bit: true` needs `adapter: qlora` (4-bit weights cannot be trained directly)")
        if q.load_in_8bit and adapter != "lora":
            raise ValueError("`load_in_8bit: true` needs `adapter: lora` (8-bit weights cannot be trained directly)")
        if q.model_quantization_config and adapter != "lora":
            raise ValueError("`model_quantization_config` needs `adapter: lora` (quantized weights cannot be "
                             "trained directly)")
        return self

    @model_validator(mode="after")
    def _image_rows(self):
        if self.model.task != "image_text_to_text":
            return self
        if self.data.sample_packing or self.data.pretraining_dataset:
            raise ValueError("image-text-to-text models train on whole conversations: remove `sample_packing` "
                             "and `pretraining_dataset`")
        if any(ds.type != "chat_template" for ds in self.data.datasets or []):
            raise ValueError("image-text-to-text models read `type: chat_template` rows (messages + images)")
        return self

    @model_validator(mode="after")
    def _rows_fit_the_method(self):
        from axo.config.data import KTO_TYPES, PREFERENCE_TYPES, STEPWISE_TYPES

        r = self.rl
        wanted = (KTO_TYPES if r.rl == "kto" else STEPWISE_TYPES if r.process_reward_model
                  else PREFERENCE_TYPES if r.rl or r.reward_model else None)
        for i, ds in enumerate(self.data.datasets or []):
            if r.rl == "grpo":
                if not (ds.is_transform or ds.type == "chat_template"):
                    raise ValueError(f"`datasets[{i}].type`: GRPO reads prompts through a transform "
                                     "(`type: my_module.transform`) or `type: chat_template`")
                continue
            if ds.is_transform:
                raise ValueError(f"`datasets[{i}].type: {ds.type}` is a row transform; transforms feed `rl: grpo`")
            if wanted and ds.type_name not in wanted:
                raise ValueError(f"`datasets[{i}].type: {ds.type_name}` is not a row format of this training; use "
                                 + ", ".join(wanted))
            if not wanted and ds.type_name in PREFERENCE_TYPES + KTO_TYPES + STEPWISE_TYPES:
                raise ValueError(f"`datasets[{i}].type: {ds.type_name}` holds preference rows: set `rl:` "
                                 "(or `reward_model: true` / `process_reward_model: true`)")
        if (r.rl or r.reward_model or r.process_reward_model) and self.data.sample_packing:
            raise ValueError("`sample_packing` does not apply to preference training or reward models (TRL keeps "
                             "chosen and rejected answers side by side); remove it")
        if r.reward_model and self.model.task != "sequence_classification":
            raise ValueError("`reward_model: true` trains a scoring head: set `model_type: "
                             "AutoModelForSequenceClassification` and `num_labels: 1`")
        if r.process_reward_model and self.model.task != "token_classification":
            raise ValueError("`process_reward_model: true` scores every step: set `model_type: "
                             "AutoModelForTokenClassification` and `num_labels: 2`")
        return self

    @model_validator(mode="after")
    def _one_activation_checkpointing(self):
        p = self.parallel
        if p.use_fsdp and p.fsdp_options.activation_checkpointing and self.train.gradient_checkpointing:
            raise ValueError("`gradient_checkpointing` and `fsdp_config.activation_checkpointing` both recompute "
                             "activations; under FSDP keep only `fsdp_config.activation_checkpointing`")
        return self

    @model_validator(mode="after")
    def _qat_on_whole_layers(self):
        if self.quant.qat and (self.parallel.use_fsdp or self.parallel.deepspeed):
            raise ValueError("`qat` swaps whole layers, which axo does not do under FSDP or DeepSpeed yet: train "
                             "QAT with DDP (several processes without `fsdp_version` / `deepspeed`)")
        return self

    @model_validator(mode="after")
    def _streams_need_max_steps(self):
        if self.data.pretraining_dataset and not self.train.max_steps:
            raise ValueError("`pretraining_dataset` is streamed, so its length is unknown: set `max_steps`")
        return self

    def to_flat(self) -> dict[str, Any]:
        """The config as flat Axolotl-style keys, every default filled in: what `validate` prints
        and what is saved next to the trained model."""
        flat: dict[str, Any] = {}
        for area in AREAS:
            flat.update(getattr(self, area).model_dump(mode="json"))
        return flat


AREAS: dict[str, type[BaseModel]] = {
    name: field.annotation for name, field in Config.model_fields.items()
}
# Flat YAML key -> area that owns it.
KEY_AREA: dict[str, str] = {
    key: area for area, model in AREAS.items() for key in model.model_fields
}
