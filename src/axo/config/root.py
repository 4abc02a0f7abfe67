"""The root config: one small model per area, composed. YAML keys stay flat (Axolotl's format);
the loader routes each key to the area that owns it. Rules across areas live here, each a function
of the areas it reads; the loader runs every rule whose areas are valid and reports all problems."""

import inspect
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict

from axo.config.adapter import AdapterConfig
from axo.config.base import Area, Problem, Skipped
from axo.config.compat import COMBINATIONS
from axo.config.data import DataConfig
from axo.config.logging import LoggingConfig
from axo.config.model import ModelConfig
from axo.config.parallel import ParallelConfig
from axo.config.quantization import QuantizationConfig
from axo.config.rl import RLConfig
from axo.config.training import TrainingConfig
from axo.methods import BATCHING_KEYS, METHODS, SFT_ONLY_KEYS, Method, method_name, training_name


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

    @property
    def method(self) -> Method:
        """What this config trains: its entry in the method table (axo.methods)."""
        return METHODS[method_name(self.rl)]

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


def _eval_needs_data(train: TrainingConfig, data: DataConfig) -> Iterator[Problem]:
    if data.has_eval:
        return
    for key in ("eval_steps", "early_stopping_patience", "load_best_model_at_end", "do_causal_lm_eval"):
        if getattr(train, key):
            yield (key,), (f"there is nothing to evaluate on: set `val_set_size` or `test_datasets`, or remove "
                           f"`{key}`")
    if train.save_strategy == "best" or train.eval_strategy in ("steps", "epoch"):
        key = "save_strategy" if train.save_strategy == "best" else "eval_strategy"
        yield (key,), "there is nothing to evaluate on: set `val_set_size` or `test_datasets`"


def _generation_eval_needs_sft(train: TrainingConfig, rl: RLConfig, model: ModelConfig) -> Iterator[Problem]:
    method = METHODS[method_name(rl)]
    if train.do_causal_lm_eval and (not method.axo_batches or model.task != "causal_lm"):
        yield ("do_causal_lm_eval",), (f"generates answers to SFT rows of a causal LM; {training_name(method)} "
                                       f"({method.summary}) has no such rows. Remove it")


def _quantized_base_needs_adapter(quant: QuantizationConfig, lora: AdapterConfig) -> Iterator[Problem]:
    if lora.adapter == "qlora" and not quant.load_in_4bit:
        yield ("adapter",), "`qlora` trains LoRA on a 4-bit base: set `load_in_4bit: true`"
    if quant.load_in_4bit and lora.adapter != "qlora":
        yield ("load_in_4bit",), "needs `adapter: qlora` (4-bit weights cannot be trained directly)"
    if quant.load_in_8bit and lora.adapter != "lora":
        yield ("load_in_8bit",), "needs `adapter: lora` (8-bit weights cannot be trained directly)"
    if quant.gptq and lora.adapter != "lora":
        yield ("gptq",), "needs `adapter: lora` (GPTQ weights cannot be trained directly)"
    if quant.quantized and quant.model_quantization_config and lora.adapter != "lora":
        yield ("model_quantization_config",), "needs `adapter: lora` (quantized weights cannot be trained directly)"


def _multimodal_rows(model: ModelConfig, data: DataConfig, train: TrainingConfig) -> Iterator[Problem]:
    if model.task != "multimodal_lm":
        return
    if train.chunked_cross_entropy:
        yield ("chunked_cross_entropy",), Skipped("multimodal models compute their own loss over whole logits")
    # sample_packing: warned about with the family's reason once the processor is loaded (data/media.py)
    if data.pretraining_dataset:
        yield ("pretraining_dataset",), ("does not apply to multimodal models (they train whole "
                                         "conversations); remove it")
    if data.excess_length_strategy == "truncate":
        yield ("excess_length_strategy",), ("`truncate` would cut image or audio tokens apart; multimodal rows can only be "
                                            "dropped or refused (drop, raise)")
    for i, ds in enumerate(data.datasets or []):
        if ds.type != "chat_template":
            yield ("datasets", i, "type"), "multimodal models read `type: chat_template` rows (with images or audio)"


def _rows_fit_the_method(rl: RLConfig, data: DataConfig, model: ModelConfig) -> Iterator[Problem]:
    method = METHODS[method_name(rl)]
    training = training_name(method)
    for list_key in ("datasets", "test_datasets"):
        for i, ds in enumerate(getattr(data, list_key) or []):
            if ds.row_type not in method.row_types:
                yield (list_key, i, "type"), _wrong_rows(ds, method, training)
    if model.task not in method.tasks:
        yield ("model_type",), _wrong_task(model, method, training)
    if not method.axo_batches:
        for key in SFT_ONLY_KEYS:
            if getattr(data, key) in (None, False):
                continue
            if key in BATCHING_KEYS:  # packing is exact, so without it only speed and memory change
                yield (key,), Skipped(f"does not apply to {training}: its trainer builds its own batches, each "
                                      "padded to its longest row")
            else:
                yield (key,), f"does not apply to {training}: its trainer builds its own batches; remove it"
    for list_key in ("datasets", "test_datasets") if not method.axo_batches else ():
        for i, ds in enumerate(getattr(data, list_key) or []):
            for key in LABEL_KEYS:
                if key in ds.model_fields_set:
                    yield (list_key, i, key), (f"chooses which tokens SFT trains; under {training} the trainer "
                                               "decides that itself; remove it")
    if data.excess_length_strategy == "truncate" and not method.truncates:
        yield ("excess_length_strategy",), (f"`truncate` does not apply to {training}: its rows cannot be cut "
                                            "without changing what they ask. Use drop (the default) or raise")


# Dataset keys that choose which tokens SFT trains.
LABEL_KEYS = ("roles_to_train", "train_on_eos", "train_on_eot", "message_field_training")


def _wrong_rows(ds, method: Method, training: str) -> str:
    if ds.row_type == "transform":
        return f"`{ds.type}` is a row transform, which feeds `rl: grpo` and `rl: ebft`; {training} reads {', '.join(method.row_types)}"
    readers = [m for m in METHODS.values() if ds.row_type in m.row_types]
    hint = f" (`{ds.type_name}` rows train {', '.join(training_name(m) for m in readers)})" if readers else ""
    return f"`{ds.type_name}` is not a row format of {training}; use " + ", ".join(method.row_types) + hint


def _wrong_task(model: ModelConfig, method: Method, training: str) -> str:
    if method.name == "reward":
        return ("`reward_model: true` trains a scoring head: set `model_type: AutoModelForSequenceClassification` "
                "and `num_labels: 1`")
    if method.name == "process_reward":
        return ("`process_reward_model: true` scores every step: set `model_type: AutoModelForTokenClassification` "
                "and `num_labels: 2`")
    trains = {"sequence_classification": "a reward model (`reward_model: true`, chosen/rejected pairs)",
              "token_classification": "a process reward model (`process_reward_model: true`, stepwise rows)"}
    if model.task in trains:
        return f"`{model.model_type}` is a classifier: it trains as {trains[model.task]}, not with {training}"
    return f"`{model.model_type}` cannot be trained with {training}; use AutoModelForCausalLM"


def _length_grouping_needs_plain_rows(train: TrainingConfig, data: DataConfig, rl: RLConfig) -> Iterator[Problem]:
    if train.group_by_length and (data.sample_packing or not METHODS[method_name(rl)].axo_batches):
        yield ("group_by_length",), ("applies to SFT rows without `sample_packing` (packing already fills each "
                                     "batch; other methods' trainers batch their own way)")


def _fresh_weights_are_not_quantized(model: ModelConfig, quant: QuantizationConfig) -> Iterator[Problem]:
    if model.reinit_weights and quant.quantized:
        yield ("reinit_weights",), ("builds fresh weights, which cannot be loaded quantized: drop `load_in_4bit` / "
                                    "`load_in_8bit` / `model_quantization_config`, or load trained weights")


def _loraplus_builds_adamw(lora: AdapterConfig, train: TrainingConfig) -> Iterator[Problem]:
    if lora.loraplus_lr_ratio and train.optimizer not in ("adamw_torch", "adamw_torch_fused"):
        yield ("optimizer",), (f"`loraplus_lr_ratio` builds an AdamW optimizer, which `{train.optimizer}` would "
                               "replace: use adamw_torch (or remove `loraplus_lr_ratio`)")


def _lisa_needs_whole_layers(lora: AdapterConfig, parallel: ParallelConfig) -> Iterator[Problem]:
    if lora.lisa_n_layers and (parallel.use_fsdp or parallel.deepspeed):
        yield ("lisa_n_layers",), COMBINATIONS["lisa_whole_layers"][1]


def _muon_needs_whole_matrices(train: TrainingConfig, parallel: ParallelConfig) -> Iterator[Problem]:
    if train.optimizer == "muon" and (parallel.use_fsdp or parallel.deepspeed):
        yield ("optimizer",), COMBINATIONS["muon_whole_matrices"][1]


def _qat_on_whole_layers(quant: QuantizationConfig, parallel: ParallelConfig) -> Iterator[Problem]:
    if quant.qat and parallel.deepspeed:
        yield ("qat",), COMBINATIONS["qat_deepspeed"][1]


def _streams_need_max_steps(data: DataConfig, train: TrainingConfig) -> Iterator[Problem]:
    if data.pretraining_dataset and not train.max_steps:
        yield ("pretraining_dataset",), "a streamed dataset has no known length: set `max_steps`"


def _distillation_has_one_teacher(rl: RLConfig, data: DataConfig) -> Iterator[Problem]:
    entries = [(k, i, ds) for k in ("datasets", "test_datasets") for i, ds in enumerate(getattr(data, k) or [])]
    offline = [(k, i) for k, i, ds in entries if ds.logprobs_field]
    for k, i, ds in entries:
        for key in ("logprobs_field", "temperature"):
            if getattr(ds, key) != type(ds).model_fields[key].default and not rl.kd_trainer:
                yield (k, i, key), "holds a teacher's log-probs for `kd_trainer: true`, which is not set; remove it"
    if not rl.kd_trainer:
        return
    if rl.teacher_model and offline:
        yield (*offline[0], "logprobs_field"), ("the teacher is `teacher_model`, which computes the log-probs "
                                                "itself; remove `logprobs_field` or `teacher_model`")
    elif not rl.teacher_model and len(offline) < len(entries):
        missing = next((k, i) for k, i, ds in entries if not ds.logprobs_field)
        yield (*missing, "logprobs_field"), ("`kd_trainer: true` distils a teacher: name the column with its "
                                             "log-probs here, or set `teacher_model: path/to/teacher` to run it "
                                             "alongside")
    for key in ("kd_online_topk", "kd_temperature_min"):
        if getattr(rl, key) and not rl.teacher_model:
            yield (key,), "applies to a teacher run alongside (`teacher_model`); the rows' log-probs are fixed"


def _user_code(data: DataConfig, rl: RLConfig) -> list[Problem]:
    from axo.config.user_code import check_user_code

    return check_user_code(data, rl)


RULES = [_eval_needs_data, _generation_eval_needs_sft, _quantized_base_needs_adapter, _multimodal_rows, _rows_fit_the_method,
         _fresh_weights_are_not_quantized, _loraplus_builds_adamw, _length_grouping_needs_plain_rows,
         _qat_on_whole_layers, _lisa_needs_whole_layers, _muon_needs_whole_matrices, _streams_need_max_steps,
         _distillation_has_one_teacher, _user_code]


def cross_area_problems(areas: dict[str, Area]) -> list[Problem]:
    """Every rule whose areas all validated, each rule given the areas its parameters name."""
    found: list[Problem] = []
    for rule in RULES:
        needs = list(inspect.signature(rule).parameters)
        if all(name in areas for name in needs):
            found += list(rule(**{name: areas[name] for name in needs}))
    return found
