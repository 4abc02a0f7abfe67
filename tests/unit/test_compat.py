"""Axolotl's keys (config/compat.py): every one has exactly one class, mapped keys become what they
mean, speed-only keys are skipped with a warning, refused ones say why, and the implemented ones
reach the library objects they configure."""

import logging

import pytest

from axo.config import validate
from axo.config.axolotl import ALIASES, ATTENTION_FLAGS, MESSAGE_FIELD_ALIASES, axolotl_keys
from axo.config.compat import TABLE
from axo.config.data import DatasetConfig
from axo.config.loader import _nested_models
from axo.config.root import KEY_AREA
from axo.errors import ConfigError
from axo.train.args import to_tracker_env, to_training_args

BASE = {"base_model": "m", "datasets": [{"path": "d.jsonl", "type": "alpaca"}]}


def problems(**keys) -> list[str]:
    with pytest.raises(ConfigError) as err:
        validate({**BASE, **keys})
    return err.value.problems


def unclassified() -> list[str]:
    keys = axolotl_keys()
    nested = _nested_models()
    left = [k for k in keys["top"] | keys["plugin"] if k not in KEY_AREA and k not in ALIASES
            and k not in ATTENTION_FLAGS and k not in TABLE]
    left += [f"datasets.{k}" for k in keys["dataset"] if k not in DatasetConfig.model_fields
             and k not in MESSAGE_FIELD_ALIASES and f"datasets.{k}" not in TABLE]
    for block, block_keys in keys.items():
        if block in ("top", "dataset", "plugin") or block in TABLE or block == "special_tokens":
            continue  # a whole block refused or skipped covers its keys; special_tokens are a model's fields
        fields = set(nested[block].model_fields) if block in nested else set()
        left += [f"{block}.{k}" for k in block_keys if k not in fields and f"{block}.{k}" not in TABLE]
    return sorted(left)


def test_every_axolotl_key_has_a_class():
    assert unclassified() == []


def test_every_key_any_axolotl_release_read_has_a_class():
    """Not only the newest release's keys: every key that a release from 0.3.0 on (or main between
    releases) read, from Axolotl's git history (config/axolotl_history.tsv)."""
    from axo.config.compat import history

    keys = axolotl_keys()
    left = [key for (where, key) in history() if where == "top" and key not in set(KEY_AREA) | keys["top"] | keys["plugin"]
            and key not in ALIASES and key not in ATTENTION_FLAGS and key not in TABLE]
    left += [f"datasets.{key}" for (where, key) in history() if where == "dataset"
             and key not in DatasetConfig.model_fields and key not in keys["dataset"]
             and key not in MESSAGE_FIELD_ALIASES and f"datasets.{key}" not in TABLE]
    assert sorted(left) == []
    assert len([k for k in history() if k[0] == "top"]) >= 500  # the whole history, not a sample


def test_old_names_are_read_as_their_successors(caplog):
    """A key an older release read under another name means the newer key, said once."""
    with caplog.at_level(logging.INFO, logger="axo"):
        cfg = validate({**BASE, "val_set_size": 0.1, "do_causal_lm_eval": True, "eval_table_max_new_tokens": 64,
                        "push_to_hub_model_id": "me/model", "adamw_beta2": 0.95})
    assert cfg.train.eval_max_new_tokens == 64 and cfg.train.adam_beta2 == 0.95
    assert cfg.train.hub_model_id == "me/model"
    assert "`eval_table_max_new_tokens` (Axolotl): Axolotl's old name of `eval_max_new_tokens`" in caplog.text


def test_mapped_keys_become_what_they_mean(caplog):
    caplog.set_level(logging.INFO, logger="axo")
    cfg = validate({**BASE, "dataset_num_proc": 4, "evaluation_strategy": "no", "noisy_embedding_alpha": 5,
                    "xformers_attention": True, "include_tkps": True, "rope_scaling": {"type": "linear", "factor": 2},
                    "tokens": {"pad_token": "<pad>"}, "optimizer": "ao_adamw_8bit",
                    "fsdp_version": 2, "fsdp_config": {"fsdp_sharding_strategy": "SHARD_GRAD_OP"}})
    assert cfg.data.dataset_processes == 4 and cfg.train.eval_strategy == "no"
    assert cfg.train.neftune_noise_alpha == 5 and cfg.model.attn_implementation == "sdpa"
    assert cfg.train.include_tokens_per_second and cfg.train.optimizer == "adamw_torch_8bit"
    assert cfg.model.overrides_of_model_config == {"rope_scaling": {"type": "linear", "factor": 2}}
    assert cfg.model.special_tokens.pad_token == "<pad>"
    assert cfg.parallel.fsdp_options.reshard_after_forward is False
    assert "`dataset_num_proc` (Axolotl): axo's `dataset_processes`" in caplog.text  # said once, at load


def test_axolotl_deepspeed_files_are_axo_presets():
    assert validate({**BASE, "deepspeed": "deepspeed_configs/zero3_bf16.json"}).parallel.deepspeed == "zero3"
    offload = validate({**BASE, "deepspeed": "axolotl/deepspeed_configs/zero3_bf16_cpuoffload_params.json"})
    assert offload.parallel.deepspeed == "zero3_offload_params"


def test_speed_only_keys_are_skipped_with_one_warning(caplog):
    cfg = validate({**BASE, "liger_rms_norm_gated": True, "lora_mlp_kernel": True, "plugins":
                    ["axolotl.integrations.liger.LigerPlugin", "axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin"],
                    "cut_cross_entropy": True})
    assert cfg.model.base_model == "m"
    assert "`liger_rms_norm_gated` is skipped: Liger's fused kernels" in caplog.text
    assert "What is learned does not change" in caplog.text
    assert cfg.train.chunked_cross_entropy  # Cut Cross Entropy's memory saving, by axo's chunked loss


def test_refused_keys_and_values_say_why():
    msgs = problems(optimizer="dion", relora=True, plugins=["axolotl.integrations.grokfast.GrokfastPlugin", "x.Y"],
                    kd_online_server_base_url="http://teacher:8000", datasets=[{"path": "d.jsonl", "type": "metharme"}])
    joined = "\n".join(msgs)
    assert "`optimizer: dion`: Axolotl's `dion` optimizer is not in axo yet" in joined
    assert "`relora`: a training method axo does not have" in joined
    assert "GrokfastPlugin is not in axo" in joined and "'x.Y' is not a plugin axo knows" in joined
    assert "`kd_online_server_base_url`: a teacher served by vLLM or SGLang is not in axo" in joined
    assert "`metharme`: an older prompt format axo does not write" in joined


def test_axolotl_kd_configs_load_as_axo_distillation():
    cfg = validate({**BASE, "plugins": ["axolotl.integrations.kd.KDPlugin"], "kd_trainer": True, "kd_ce_alpha": 0.1,
                    "kd_alpha": 0.9, "kd_temperature": 1.0, "datasets": [
                        {"path": "d.jsonl", "type": "axolotl.integrations.kd.chat_template",
                         "field_messages": "messages_combined", "logprobs_field": "llm_logprobs"}]})
    assert cfg.method.name == "kd" and cfg.data.datasets[0].type == "chat_template"
    assert cfg.data.datasets[0].logprobs_field == "llm_logprobs" and cfg.rl.kd_alpha == 0.9


def test_distillation_needs_exactly_one_teacher():
    sft = [{"path": "d.jsonl", "type": "alpaca"}]
    assert "name the column with its log-probs here, or set `teacher_model" in "".join(
        problems(kd_trainer=True, datasets=sft))
    both = problems(kd_trainer=True, teacher_model="t", datasets=[{**sft[0], "logprobs_field": "lp"}])
    assert "remove `logprobs_field` or `teacher_model`" in "".join(both)
    assert "which is not set; remove it" in "".join(problems(datasets=[{**sft[0], "logprobs_field": "lp"}]))
    assert "applies to a teacher run alongside" in "".join(
        problems(kd_trainer=True, kd_online_topk=8, datasets=[{**sft[0], "logprobs_field": "lp"}]))
    assert "does nothing with SFT" in "".join(problems(kd_alpha=0.5, datasets=sft))
    assert "`rl: gkd` distils a teacher: set `teacher_model" in "".join(problems(rl="gkd", datasets=sft))


def test_an_unknown_key_one_edit_from_a_learned_key_is_an_error(caplog):
    """The rule of UNREAD_RULE: a typo of a key that changes what is learned stops the run; a typo of one
    that does not (`saves_per_epoch` says when to save) is a warning naming it, and an error with strict."""
    [msg] = problems(lora_rr=8)
    assert msg.startswith("`lora_rr`: unknown key; did you mean `lora_r`?")
    with caplog.at_level(logging.WARNING, logger="axo"):
        validate({**BASE, "save_per_epoch": 2})
    assert "`save_per_epoch`: no Axolotl release read this key; the closest key is `saves_per_epoch`" in caplog.text
    [msg] = problems(save_per_epoch=2, strict=True)
    assert "the closest key is `saves_per_epoch`" in msg


def test_checkpoint_and_eval_schedules(make_config):
    cfg = make_config(saves_per_epoch=4, evals_per_epoch=2, val_set_size=0.1, num_epochs=2, max_steps=None)
    args = to_training_args(cfg, "fp32", has_eval=True)
    assert (args.save_strategy, args.save_steps) == ("steps", 1 / 8)  # Axolotl's 1 / (per epoch x epochs)
    assert (args.eval_strategy, args.eval_steps) == ("steps", 1 / 4)
    args = to_training_args(make_config(save_strategy="no", evals_per_epoch=0), "fp32", has_eval=False)
    assert args.save_strategy == "no" and args.eval_strategy == "no"
    best = make_config(save_strategy="best", metric_for_best_model="eval_loss", val_set_size=0.1, save_steps=5)
    args = to_training_args(best, "fp32", has_eval=True)
    assert (args.save_strategy, args.save_steps, args.metric_for_best_model) == ("best", 5, "eval_loss")
    stop = make_config(early_stopping_patience=2, val_set_size=0.1)
    assert to_training_args(stop, "fp32", has_eval=True).metric_for_best_model == "eval_loss"


def test_training_keys_reach_training_arguments(make_config):
    cfg = make_config(batch_size=32, micro_batch_size=8, warmup_steps=0.1, cosine_min_lr_ratio=0.1,
                      group_by_length=True, save_only_model=True, gradient_checkpointing_kwargs={"use_reentrant": False},
                      torch_compile=True, torch_compile_backend="inductor", dataloader_num_workers=0,
                      dataloader_pin_memory=False, optim_args={"a": 1}, include_tokens_per_second=True)
    args = to_training_args(cfg, "fp32", has_eval=False)
    assert args.gradient_accumulation_steps == 4 and args.warmup_steps == 0.1
    assert args.lr_scheduler_type == "cosine_with_min_lr" and args.lr_scheduler_kwargs == {"min_lr_rate": 0.1}
    assert args.train_sampling_strategy == "group_by_length" and args.save_only_model
    assert args.gradient_checkpointing_kwargs == {"use_reentrant": False}
    assert args.torch_compile and args.torch_compile_backend == "inductor"
    assert args.dataloader_num_workers == 0 and not args.dataloader_pin_memory and args.optim_args == "a=1"
    assert args.include_num_input_tokens_seen == "non_padding"
    assert "batch_size" in problems(batch_size=30, micro_batch_size=8)[0]
    packed = make_config(group_by_length=True, sample_packing=True)  # packing builds its own batches, as in Axolotl
    assert not packed.train.group_by_length


def test_reward_centering_reaches_trl(make_config):
    from axo.train.trl_args import to_reward_config

    cfg = make_config(reward_model=True, model_type="AutoModelForSequenceClassification", num_labels=1,
                      center_rewards_coefficient=0.01,
                      datasets=[{"path": "p.jsonl", "type": "bradley_terry.chat_template"}])
    assert to_reward_config(cfg, "fp32", has_eval=False).center_rewards_coefficient == 0.01
    assert "`center_rewards_coefficient`" in problems(center_rewards_coefficient=0.01)[0]  # SFT has no rewards


def test_tracker_keys(make_config, tmp_path):
    lg = make_config(wandb_project="p", wandb_watch="gradients", wandb_log_model="end", wandb_run_id="r1",
                     hf_mlflow_log_artifacts=True).logging
    env = to_tracker_env(lg, str(tmp_path), environ={})
    assert (env["WANDB_WATCH"], env["WANDB_LOG_MODEL"], env["WANDB_RUN_ID"]) == ("gradients", "end", "r1")
    assert env["HF_MLFLOW_LOG_ARTIFACTS"] == "true"


def test_adapter_keys_reach_peft(make_config):
    from axo.model.adapters import to_lora_config

    cfg = make_config(adapter="lora", lora_target_modules=["q_proj"], lora_fan_in_fan_out=True,
                      lora_alpha_pattern={"q_proj": 4}, lora_rank_pattern={"q_proj": 2},
                      lora_target_parameters=["mlp.experts.gate_up_proj"], peft_init_lora_weights="gaussian",
                      peft_trainable_token_indices=[5])
    lora = to_lora_config(cfg.lora, "causal_lm", new_token_ids=[7])
    assert lora.fan_in_fan_out and lora.alpha_pattern == {"q_proj": 4} and lora.rank_pattern == {"q_proj": 2}
    assert lora.target_parameters == ["mlp.experts.gate_up_proj"] and lora.init_lora_weights == "gaussian"
    assert lora.trainable_token_indices == [5, 7]


def test_a_slow_tokenizer_is_refused():
    assert "fast (Rust) tokenizer" in problems(tokenizer_use_fast=False)[0]


def test_the_readme_states_the_rule_for_keys_no_release_read():
    from pathlib import Path

    from axo.config.loader import UNREAD_RULE

    readme = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    assert "**Keys Axolotl never read.** " + UNREAD_RULE in readme


def test_the_readme_shows_the_table():
    from pathlib import Path

    from axo.config.compat import markdown

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    shown = readme.split("<!-- compat:start -->\n")[1].split("<!-- compat:end -->")[0]
    assert shown == markdown(), "regenerate it: python -m axo.config.compat"


def test_swanlab_comet_and_trackio_keys(make_config, tmp_path):
    from axo.model.preflight import check_backends

    cfg = make_config(use_swanlab=True, swanlab_project="p", swanlab_mode="offline", swanlab_description="d",
                      swanlab_web_host="https://swan.example", use_comet=True,
                      comet_project_name="c", comet_online=False, trackio_project_name="t", trackio_space_id="me/s",
                      trackio_run_name="run-1")
    assert cfg.logging.report_to == ["swanlab", "comet_ml", "trackio"]
    env = to_tracker_env(cfg.logging, str(tmp_path), environ={})
    assert (env["SWANLAB_PROJECT"], env["SWANLAB_MODE"], env["COMET_PROJECT_NAME"], env["COMET_START_ONLINE"]) == \
        ("p", "offline", "c", "false")
    assert (env["SWANLAB_DESCRIPTION"], env["SWANLAB_WEB_HOST"]) == ("d", "https://swan.example")
    args = to_training_args(cfg, "fp32", has_eval=False)
    assert (args.project, args.trackio_space_id, args.run_name) == ("t", "me/s", "run-1")
    with pytest.raises(Exception, match="`pip install swanlab`"):  # not installed here: the metrics would be lost
        check_backends(cfg)


def test_hub_pushes_are_checked_before_training(make_config, monkeypatch):
    from axo.errors import AxoError
    from axo.model.preflight import check_backends

    cfg = make_config(hub_model_id="me/model", hub_strategy="every_save", push_dataset_to_hub="me/data")
    args = to_training_args(cfg, "fp32", has_eval=False)
    assert args.push_to_hub and (args.hub_model_id, args.hub_strategy) == ("me/model", "every_save")
    assert args.hub_private_repo  # private unless asked, as Axolotl creates it
    assert to_training_args(make_config(hub_model_id="me/model", hub_private_repo=False), "fp32",
                            has_eval=False).hub_private_repo is False
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as in every test: pushing cannot work, and axo says so first
    with pytest.raises(AxoError, match="`hub_model_id: me/model` and `push_dataset_to_hub: me/data` pushes to the "
                                       "Hugging Face hub, but HF_HUB_OFFLINE is set"):
        check_backends(cfg)


# Every key that 3 or more of Axolotl's own example configs use (shared/axolotl-config-keys/
# usage-in-axolotl-examples.md), in configs written the way those examples write them.
COMMON = {
    "base_model": "org/model", "output_dir": "./out", "sequence_len": 2048, "micro_batch_size": 2,
    "learning_rate": 0.0002, "optimizer": "adamw_bnb_8bit", "bf16": "auto", "gradient_accumulation_steps": 4,
    "lr_scheduler": "cosine", "logging_steps": 1, "num_epochs": 1, "tf32": True, "warmup_ratio": 0.1,
    "saves_per_epoch": 1, "val_set_size": 0.05, "evals_per_epoch": 4, "attn_implementation": "flash_attention_2",
    "gradient_checkpointing": True, "gradient_checkpointing_kwargs": {"use_reentrant": False}, "weight_decay": 0.0,
    "wandb_project": None, "wandb_entity": None, "wandb_name": None, "wandb_watch": None, "wandb_log_model": None,
    "dataset_prepared_path": "last_run_prepared", "special_tokens": {"pad_token": "<|end_of_text|>"},
    "resume_from_checkpoint": None, "strict": False, "trust_remote_code": True, "fp16": None,
    "plugins": ["axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin", "axolotl.integrations.liger.LigerPlugin",
                "axolotl.integrations.kernels.KernelsPlugin"],
    "liger_rms_norm": True, "liger_glu_activation": True, "liger_layer_norm": True, "liger_rope": True,
    "liger_fused_linear_cross_entropy": True, "liger_rms_norm_gated": True, "use_kernels": True,
    "use_scattermoe": True, "use_sonicmoe": False, "experts_implementation": "scattermoe",
    "remove_unused_columns": False, "skip_prepare_dataset": False, "eot_tokens": ["<|im_end|>"],
    "chat_template": "qwen3", "tokenizer_type": "AutoTokenizer", "model_type": "AutoModelForCausalLM",
    "sample_packing": True, "eval_sample_packing": False, "pad_to_sequence_len": True, "max_steps": None,
    "loss_watchdog_threshold": 5.0, "loss_watchdog_patience": 3, "seed": 42, "torchdistx_path": None,
    "activation_offloading": True, "ddp_find_unused_parameters": False, "max_grad_norm": 1.0, "train_on_inputs": False,
    "save_total_limit": 2, "early_stopping_patience": 3, "save_strategy": "steps",
    "eval_batch_size": 2, "adam_beta2": 0.95, "adam_epsilon": 1e-8, "flex_attn_compile_kwargs": {"dynamic": False},
    "experimental_skip_move_to_device": True, "quantize_moe_experts": True, "llama4_linearized_experts": False,
    "gptq_groupsize": 128, "gptq_model_v1": False, "cosine_min_lr_ratio": 0.1, "cosine_constant_lr_ratio": 0.8,
    "save_only_model": False, "torch_compile": False, "resize_token_embeddings_to_32x": True,
    "model_config": {"rope_theta": 1000000.0}, "trackio_project_name": None, "push_dataset_to_hub": None,
    "datasets": [{"path": "org/data", "type": "chat_template", "split": "train", "field_messages": "messages",
                  "message_property_mappings": {"role": "role", "content": "content"}}],
}
QLORA_FSDP = {"adapter": "qlora", "load_in_4bit": True, "load_in_8bit": False, "lora_r": 16, "lora_alpha": 32,
              "lora_dropout": 0.05, "lora_target_linear": True, "lora_target_modules": None, "lora_model_dir": None,
              "lora_mlp_kernel": True, "lora_qkv_kernel": True, "lora_o_kernel": True, "lora_fan_in_fan_out": None,
              "lora_modules_to_save": ["embed_tokens", "lm_head"], "lora_target_parameters": ["mlp.experts.down_proj"],
              "fsdp_version": 2, "fsdp": None, "dp_shard_size": 2, "context_parallel_size": 1,
              "fsdp_config": {"offload_params": False, "state_dict_type": "FULL_STATE_DICT",
                              "auto_wrap_policy": "TRANSFORMER_BASED_WRAP", "reshard_after_forward": True,
                              "transformer_layer_cls_to_wrap": "Qwen3DecoderLayer", "sharding_strategy": "FULL_SHARD"}}
FULL_DEEPSPEED = {"deepspeed": "deepspeed_configs/zero3_bf16.json", "unfrozen_parameters": ["^model.layers.*"],
                  "batch_size": 8, "tensor_parallel_size": 1, "expert_parallel_size": 2}


@pytest.mark.parametrize("extra", [QLORA_FSDP, FULL_DEEPSPEED], ids=["qlora-fsdp", "full-deepspeed"])
def test_the_keys_axolotl_examples_use_most_validate(extra):
    keys = {**COMMON, **extra}
    if "batch_size" in extra:
        keys.pop("gradient_accumulation_steps")
    cfg = validate(keys)
    assert cfg.train.saves_per_epoch == 1 and cfg.model.attn_implementation == "flash_attention_2"


def test_the_rest_of_the_common_keys_validate_or_are_refused_by_their_row():
    base = {"base_model": "m", "datasets": [{"path": "d.jsonl", "type": "chatml.intel"}]}
    assert validate({**base, "rl": "dpo", "trl": {"beta": 0.1}}).method.name == "dpo"
    assert validate({"base_model": "m", "pretraining_dataset": [{"path": "c.jsonl"}], "max_steps": 5}).data.pretraining_dataset
    assert validate({**BASE, "tokens": ["<think>"], "qat": {"weight_dtype": "int4"}}).quant.qat
    assert validate({**BASE, "model_quantization_config": "TorchAoConfig", "adapter": "lora"}).quant.quantized
    # Axolotl's multimodal configs name a processor and no model class
    multimodal = validate({"base_model": "m", "processor_type": "AutoProcessor",
                           "datasets": [{"path": "d.jsonl", "type": "chat_template"}]}).model
    assert (multimodal.model_type, multimodal.task) == ("AutoModelForMultimodalLM", "multimodal_lm")
    assert validate({**BASE, "flash_attention": True, "group_by_length": False}).model.attn_implementation
    assert validate({"base_model": "m", "model_type": "AutoModelForSequenceClassification", "num_labels": 1,
                     "reward_model": True, "datasets": [{"path": "p", "type": "bradley_terry.chat_template"}]})
    assert validate({**BASE, "gptq": True, "adapter": "lora"}).quant.gptq
    for refused in ({"use_eaft": True}, {"max_packed_sequence_len": 2048}):
        [msg] = problems(**refused)
        assert msg.startswith(f"`{next(iter(refused))}`") and TABLE[next(iter(refused))].note in msg
    msg = problems(rl="ebft", ebft={"mode": "strided"})[0]
    assert msg.startswith("`ebft.mode`: strided EBFT") and "Use `ebft.mode: structured`" in msg


def test_older_axolotl_spellings():
    old = validate({"base_model": "m", "pretraining_dataset": "corpus.jsonl", "max_steps": 3,
                    "tokens": {"bos_token": "<s>"}})
    assert old.data.pretraining_dataset[0].path == "corpus.jsonl" and old.model.special_tokens.bos_token == "<s>"


def test_an_empty_step_completion_length_is_dropped_and_a_number_refused():
    base = {"base_model": "m", "process_reward_model": True, "model_type": "AutoModelForTokenClassification",
            "num_labels": 2}
    entry = {"path": "d.jsonl", "type": "stepwise_supervised"}
    assert validate({**base, "datasets": [{**entry, "max_completion_length": None}]}).method.name == "process_reward"
    with pytest.raises(ConfigError, match="cutting step completions to a length is not in axo"):
        validate({**base, "datasets": [{**entry, "max_completion_length": 64}]})


def test_liger_keys_choose_liger_kernels(make_config, caplog):
    """Axolotl's LigerPlugin keys become transformers' use_liger_kernel with exactly the kernels they
    name; on a machine without CUDA or liger-kernel the run goes on without them, with one warning."""
    import torch

    from axo.train.args import liger_kernels

    keys = {"liger_rope": True, "liger_rms_norm": True, "liger_glu_activation": True, "liger_layer_norm": False,
            "liger_fused_linear_cross_entropy": True}
    cfg = validate({**BASE, "plugins": ["axolotl.integrations.liger.LigerPlugin"], **keys})
    assert cfg.train.use_liger_kernel
    assert cfg.train.liger_kernel_config == {"rope": True, "rms_norm": True, "swiglu": True,
                                             "fused_linear_cross_entropy": True}
    assert liger_kernels(cfg.train.liger_kernel_config) == {
        "rope": True, "rms_norm": True, "layer_norm": False, "swiglu": True, "geglu": False, "cross_entropy": False,
        "fused_linear_cross_entropy": True}  # the others off: Liger would turn most on by default
    if not torch.cuda.is_available():
        with caplog.at_level("WARNING", logger="axo"):
            args = to_training_args(make_config(**keys), "fp32", has_eval=False)
        assert not args.use_liger_kernel and "needs a CUDA GPU" in caplog.text


def test_chunked_loss_on_an_multimodal_model_is_skipped_with_a_warning(caplog):
    with caplog.at_level("WARNING", logger="axo"):
        cfg = validate({"base_model": "m", "model_type": "AutoModelForImageTextToText", "cut_cross_entropy": True,
                        "datasets": [{"path": "d.jsonl", "type": "chat_template"}]})
    assert cfg.train.chunked_cross_entropy and "`chunked_cross_entropy` is skipped: multimodal models" in caplog.text


def test_gptq_checkpoints_load_through_transformers_on_a_gpu_and_say_why_not_here(make_config):
    """`gptq: true` is a GPTQ checkpoint LoRA trains on: transformers reads its quantization config.
    Here (no CUDA) the run stops before loading, naming the reason and the CPU alternative; on any
    machine, a checkpoint that is not GPTQ is named."""
    import torch

    from axo.errors import AxoError
    from axo.model.loader import load_config
    from axo.model.preflight import check_backends

    cfg = make_config(gptq=True, adapter="lora", gptq_groupsize=128, gptq_model_v1=False)
    assert cfg.quant.gptq and cfg.quant.quantized
    with pytest.raises(ConfigError, match=r"`gptq`.*needs `adapter: lora`"):
        make_config(gptq=True)
    if not torch.cuda.is_available():
        with pytest.raises(AxoError, match="GPTQ weights run only through CUDA kernels.*`load_in_4bit: true, adapter: "
                                           "qlora`"):
            check_backends(cfg)
    with pytest.raises(AxoError, match="is not a GPTQ checkpoint .*quant_method None"):
        load_config(cfg)


JINJA = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"


@pytest.mark.parametrize("keys, expect", [
    ({"load_in_4bit": True, "adapter": "lora"}, lambda c: c.lora.adapter == "qlora"),
    ({"gradient_checkpointing": "unsloth"}, lambda c: c.train.gradient_checkpointing == "offload"),
    ({"eval_steps": 10, "evals_per_epoch": 2}, lambda c: c.train.eval_steps is None),  # nothing to evaluate on
    ({"group_by_length": True, "sample_packing": True}, lambda c: not c.train.group_by_length),
    ({"neftune_noise_alpha": 0}, lambda c: c.train.neftune_noise_alpha is None),
    ({"deepspeed": "/workspace/axolotl/deepspeed_configs/zero1.json"}, lambda c: c.parallel.deepspeed == "zero1"),
    ({"deepspeed": "configs/ds_z2_config.json"}, lambda c: c.parallel.deepspeed == "zero2"),
    ({"model_type": "llama"}, lambda c: c.model.model_type == "AutoModelForCausalLM"),
    ({"model_type": "GPT2LMHeadModel"}, lambda c: c.model.task == "causal_lm"),
    ({"float16": True, "fp16": False}, lambda c: c.model.fp16),
    ({"resume_from_checkpoint": True}, lambda c: c.train.auto_resume_from_checkpoints),
    ({"wandb_log_model": "my-run"}, lambda c: c.logging.wandb_log_model in (None, False, "false")),
    ({"gpu": "H100", "memory": 64}, lambda c: True),  # Axolotl's cloud keys: its training config never read them
    ({"lora_target_modules": ["q_proj", "lm_head"], "lora_modules_to_save": ["lm_head"], "adapter": "lora"},
     lambda c: c.lora.lora_target_modules == ["q_proj"]),
    ({"datasets": [{"path": "d.jsonl", "type": "chat_template", "chat_template": JINJA}]},
     lambda c: c.data.datasets[0].chat_template == "jinja" and c.data.datasets[0].chat_template_jinja == JINJA),
], ids=lambda v: next(iter(v)) if isinstance(v, dict) else "")
def test_values_and_combinations_axolotl_accepted_are_read_as_it_read_them(keys, expect, caplog):
    with caplog.at_level(logging.INFO, logger="axo"):
        cfg = validate({**BASE, **keys})
    assert expect(cfg)
    assert caplog.text or keys.get("model_type") == "GPT2LMHeadModel"  # said in one line (a class is just read)
