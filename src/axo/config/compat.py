"""How axo treats each of Axolotl's config keys, in one table (the README shows it).

Every Axolotl key is in exactly one class:

- implemented: an axo key of the same name does what it does in Axolotl (every field of the config
  areas; not listed below);
- mapped: axo reaches the same result another way; the loader rewrites the key (or drops it when
  there is nothing to do) and logs once what it asked for and what axo does instead;
- speed: it only buys speed or memory that this machine or axo cannot give; the run goes on with one
  warning naming what is skipped and what would enable it, and what is learned never changes;
- refused: its absence would change what is learned or where data goes; an error names why and the
  nearest supported option.

A key's value that turns nothing on (false, null, empty) is accepted in every class. Nested keys
are written `block.key` (`trl.top_p`, `fsdp_config.sharding_strategy`), keys of a dataset entry
`datasets.key`."""

from dataclasses import dataclass
from functools import cache
from typing import Any, Callable, Literal

Class = Literal["mapped", "speed", "refused"]


@dataclass(frozen=True)
class Rule:
    cls: Class
    note: str  # mapped: what axo does instead; speed: what would enable it; refused: why, and the nearest option
    convert: Callable[[Any], dict] | None = None  # mapped: the key's value -> the axo keys it becomes
    renamed: str | None = None  # an old name: today's name of the same key (`axo migrate` writes it)


def mapped(note: str, convert: Callable[[Any], dict] | None = None) -> Rule:
    return Rule("mapped", note, convert)


def old_name(new: str, note: str) -> Rule:
    """A key Axolotl renamed: read as `new`, which `axo migrate` writes instead."""
    return Rule("mapped", note, to(new), renamed=new)


def to(key: str, value: Callable[[Any], Any] = lambda v: v) -> Callable[[Any], dict]:
    """The value carried over to an axo key (after `value`)."""
    return lambda v: {key: value(v)}


def _group(cls: Class, note: str, *keys: str) -> dict[str, Rule]:
    return {key: Rule(cls, note) for key in keys}


# Axolotl's LigerPlugin keys -> the kernel each turns on (transformers' liger_kernel_config names)
LIGER_KEYS = {"liger_rope": "rope", "liger_rms_norm": "rms_norm", "liger_layer_norm": "layer_norm",
              "liger_swiglu": "swiglu", "liger_glu_activation": "swiglu", "liger_cross_entropy": "cross_entropy",
              "liger_fused_linear_cross_entropy": "fused_linear_cross_entropy"}
LIGER = "Liger's fused kernels (a CUDA GPU and `pip install liger-kernel`, then `use_liger_kernel: true`)"
KERNELS = "fused GPU kernels that axo does not drive; the same math runs without them"
GPU_ONLY = "a GPU-only speed-up; the same math runs without it"
NOT_TRAINING = "has no effect on training, which is all axo does with the config"
# Keys refused only in combination, by a rule where the config is checked; the README's table lists them.
COMBINATIONS = {
    "cp_needs_fsdp2": ("`context_parallel_size` > 1 without FSDP2 (also under DeepSpeed's ALST)",
                       "context parallelism runs on FSDP2's device mesh: set `fsdp_version: 2`"),
    "muon_whole_matrices": ("`optimizer: muon` with FSDP or DeepSpeed",
                            "`muon` orthogonalises whole weight matrices, which FSDP and DeepSpeed shard across "
                            "processes; axo has no distributed Muon. Train it with DDP, or pick adamw_torch"),
    "qat_deepspeed": ("`qat` with DeepSpeed", "QAT swaps the layers' classes, which axo has not proven under "
                      "DeepSpeed's partitioning: train QAT with FSDP (`fsdp_version: 2`) or DDP"),
    "lisa_whole_layers": ("`lisa_n_layers` with FSDP or DeepSpeed",
                          "LISA freezes and unfreezes whole layers during training, which FSDP and DeepSpeed fix when "
                          "they shard the model: train LISA with DDP"),
    "model_class": ("`model_type` naming a class outside transformers' task classes (mamba_ssm's "
                    "`MambaLMHeadModel`)", "axo loads models through transformers' classes: use a class ending in "
                    "ForCausalLM (e.g. MambaForCausalLM with a checkpoint in transformers' format)"),
}
STRIDED_EBFT = ("strided EBFT (short rollouts at anchors inside raw documents, generated with strided attention "
                "masks) is not in axo yet: it would learn something else. Use `ebft.mode: structured` with "
                "prompt / ground_truth rows")
METHOD = "a training method axo does not have; it would learn something else. Nearest: the methods in `axo --help` (rl: dpo, kto, orpo, grpo...)"
PLUGINS = {
    "axolotl.integrations.liger.LigerPlugin": "speed",
    "axolotl.integrations.liger.plugin.LigerPlugin": "speed",
    "axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin": "speed",
    "axolotl.integrations.kernels.KernelsPlugin": "speed",
    "axolotl.integrations.expert_parallel.ExpertParallelPlugin": "speed",
    "axolotl.integrations.spectrum.SpectrumPlugin": "refused",
    "axolotl.integrations.swanlab.SwanLabPlugin": "speed",
    "axolotl.integrations.lm_eval.LMEvalPlugin": "implemented",
    "axolotl.integrations.kd.KDPlugin": "implemented",
    "axolotl.integrations.grokfast.GrokfastPlugin": "refused",
    "axolotl.integrations.diffusion.DiffusionPlugin": "refused",
    "axolotl.integrations.llm_compressor.LLMCompressorPlugin": "refused",
}


def _plugins(value) -> dict:
    return {}  # each plugin's own keys are classified below; the list itself is checked in check_plugins


TABLE: dict[str, Rule] = {
    # --- other spellings of axo keys -------------------------------------------------------------
    "dataset_num_proc": mapped("axo's `dataset_processes`", to("dataset_processes")),
    "dpo_beta": old_name("rl_beta", "Axolotl's old name of `rl_beta` (deprecated since 0.5)"),
    "evaluation_strategy": old_name("eval_strategy", "Axolotl's old name (transformers' too) of `eval_strategy`"),
    "noisy_embedding_alpha": old_name("neftune_noise_alpha", "Axolotl's old name of `neftune_noise_alpha` "
                                      "(NEFTune)"),
    "bfloat16": mapped("`bf16: true`: bf16 math; a full fine-tune keeps fp32 master weights so small updates "
                       "are not rounded away (old Axolotl trained the bf16 weights themselves: `bf16: full`)",
                       to("bf16")),
    "float16": mapped("`fp16: true`: fp16 math over fp32 master weights (old Axolotl trained the fp16 weights "
                      "themselves, where small updates round away, as `bfloat16` trained bf16 ones)", to("fp16")),
    "float32": mapped("`bf16: false` (fp32 weights and math)", lambda v: {"bf16": not v}),
    "xformers_attention": mapped("sdpa, which computes the same attention", lambda v: {"attn_implementation": "sdpa"}),
    "sequence_parallel_degree": mapped("`context_parallel_size` (the same sequence split, through accelerate)",
                                       to("context_parallel_size")),
    "activation_offloading": mapped("`gradient_checkpointing: offload` (saved activations kept in CPU memory)",
                                    lambda v: {"gradient_checkpointing": "offload"} if v is True or v == "legacy"
                                    else {}),
    "include_tkps": mapped("axo's `include_tokens_per_second`", to("include_tokens_per_second")),
    "rope_scaling": mapped("`model_config: {rope_scaling: ...}` (a config override)",
                           to("overrides_of_model_config", lambda v: {"rope_scaling": v})),
    "save_safetensors": mapped("axo always saves safetensors"),
    "peft_ensure_weight_tying": mapped("axo keeps a tied head tied whenever an adapter trains it"),
    "pretrain_multipack_attn": mapped("`sample_packing: true` isolates the documents of a streamed block",
                                      to("sample_packing")),
    # --- keys that only steer Axolotl's own machinery ---------------------------------------------
    **_group("mapped", NOT_TRAINING, "axolotl_config_path", "local_rank", "world_size", "merge_lora", "merge_method",
             "gradio_max_new_tokens", "gradio_server_name", "gradio_server_port", "gradio_share", "gradio_temperature",
             "gradio_title", "hf_use_auth_token", "is_preprocess", "total_num_tokens", "total_supervised_tokens",
             "device", "tokenizer_save_jinja_files"),
    **_group("mapped", "axo reads the architecture from the model's config", "is_falcon_derived_model",
             "is_llama_derived_model", "is_mistral_derived_model", "is_qwen_derived_model"),
    "strict": mapped("`strict: true`: every key that no Axolotl release read is an error, not a warning (in "
                     "Axolotl it only kept command-line overrides to the config's own keys)"),
    "debug": mapped("`axo preprocess CFG --debug` shows prepared rows token by token"),
    "remove_unused_columns": mapped("axo's rows hold exactly what the trainer reads"),
    "skip_prepare_dataset": mapped("axo prepares and caches the data once, then trains on it: the same rows"),
    "dataset_keep_in_memory": mapped("axo memory-maps prepared data: the same rows"),
    "preprocess_iterable": mapped("axo prepares datasets as they stream from disk: the same rows"),
    "gptq_groupsize": mapped("an old GPTQ setting: transformers reads the group size from the checkpoint"),
    "gptq_model_v1": mapped("an old GPTQ setting: transformers reads the format from the checkpoint"),
    "plugins": mapped("each plugin's keys are read like any other key (see the plugin rows)", _plugins),
    # --- keys in Axolotl's own example configs that Axolotl never read (it ignores unknown keys) -----
    "eta_min": mapped("not an Axolotl key: Axolotl ignores it and its cosine decays to 0; axo does the same "
                      "(a floor is `cosine_min_lr_ratio`)"),
    "adam_eps": mapped("not an Axolotl key: Axolotl ignores it and AdamW keeps epsilon 1e-8; axo does the same "
                       "(the key is `adam_epsilon`)"),
    "torch_dtype": mapped("not an Axolotl key: `bf16` / `fp16` decide the dtype, in Axolotl and in axo"),
    "test_value": mapped("not an Axolotl key: Axolotl ignores it, so does axo"),
    "base_model_ignore_patterns": mapped("old Axolotl's download filter; transformers reads only the weight files "
                                         "it needs"),
    "sample_packing_seq_len_multiplier": mapped("old Axolotl's multipack batch size; axo sizes packs and "
                                                "micro-batches itself, `micro_batch_size` x `sequence_len` "
                                                "tokens each"),
    "gptq_disable_exllama": mapped("an old GPTQ kernel switch read only with `gptq: true`"),
    # --- speed or memory only ---------------------------------------------------------------------
    **{key: mapped(f"`use_liger_kernel` with the `{kernel}` kernel (`liger_kernel_config`): Liger's kernels where "
                   "a CUDA GPU and liger-kernel are there, else the same math without them (one warning)",
                   lambda v, kernel=kernel: {"use_liger_kernel": True, "liger_kernel_config": {kernel: True}})
       for key, kernel in LIGER_KEYS.items()},
    **_group("speed", LIGER, "liger_rms_norm_gated", "liger_kernel_impl", "dpo_use_liger_kernel",
             "trl.use_liger_loss"),
    "liger_use_token_scaling": Rule("refused", "another loss, not a speed-up: each token's loss weighted by its "
                                    "predicted probability; axo trains the plain cross-entropy. Remove it"),
    "cut_cross_entropy": mapped("axo's `chunked_cross_entropy`: the same loss, computed in chunks so the full "
                                "logits are never built at once (Cut Cross Entropy's own Triton kernels, which "
                                "go further, are not driven by axo)", to("chunked_cross_entropy")),
    **_group("speed", "LoRA Triton kernels (CUDA); peft's LoRA computes the same", "lora_mlp_kernel",
             "lora_qkv_kernel", "lora_o_kernel", "lora_embedding_kernel"),
    **_group("speed", KERNELS, "use_kernels", "use_scattermoe", "use_sonicmoe", "experts_implementation",
             "fused_attn_kernel", "flash_attn_cross_entropy", "flash_attn_rms_norm", "flash_attn_fuse_mlp",
             "flash_attn_d512", "flash_optimum", "gemma4_hybrid_attn_impl", "large_head_attention", "sdpa_varlen",
             "expert_backend", "nonexpert_quantization", "moe_grouped_backend", "moe_dequant_chunk_size",
             "moe_bnb_fast", "use_dsv4_kernels", "use_glm_dsa_kernels", "dsv4_fp8_nonexpert_mode",
             "dsv4_fp8_lora_kernel", "dsv4_shared_mlp_lora_kernel", "dsv4_bf16_all", "dsv4_fp4_grouped_mode",
             "sage_attention", "torch_compile_options",
             "gemma4_fp8_nonexpert", "gemma4_nf4_nonexpert"),
    "dense_mixer": Rule("refused", "DenseMixer computes every expert to give an MoE router a dense gradient, "
                        "another gradient than the standard one axo trains with. Remove it"),
    "quantize_moe_experts": Rule("speed", "memory only (quantized MoE experts, CUDA bitsandbytes kernels); the "
                                 "experts stay in the training precision"),
    **_group("speed", "expert parallelism (several GPUs with an MoE model)", "expert_parallel_size",
             "expert_parallel_backend", "expert_parallel_num_nvl_bytes", "expert_parallel_num_rdma_bytes",
             "expert_parallel_token_capacity", "expert_parallel_fallback_on_unsupported"),
    **_group("speed", GPU_ONLY, "flex_attn_compile_kwargs", "batch_flattening", "multipack_real_batches",
             "pad_to_multiple_of", "sample_packing_bin_size", "sample_packing_group_size",
             "sample_packing_eff_est", "sample_packing_mp_start_method", "pretrain_multipack_buffer_size",
             "streaming_multipack_buffer_size", "heads_k_stride", "ring_attn_func", "deepcompile",
             "dpo_padding_free", "dpo_use_logits_to_keep", "tiled_mlp", "tiled_mlp_num_shards",
             "tiled_mlp_use_original_mlp", "scaling_softmax_bias"),
    **_group("speed", "memory only: offloading and loading tricks for GPUs", "gpu_memory_limit", "layer_offloading",
             "lora_on_cpu",
             "ple_cpu_offload", "qlora_sharded_model_loading", "experimental_skip_move_to_device",
             "embeddings_skip_upcast", "gc_steps", "gc_collect_steps", "torchdistx_path", "selective_checkpointing",
             "dynamic_checkpoint", "peft_autocast_adapter_dtype", "fsdp_config.cpu_offload_pin_memory"),
    **_group("speed", "a profiler; axo's logs report step times", "profiler_steps", "profiler_steps_start"),
    **_group("speed", "OpenTelemetry metrics export (not in axo; TensorBoard, MLflow and W&B are)",
             "use_otel_metrics", "otel_metrics_host", "otel_metrics_port"),
    # --- refused: they would change what is learned ---------------------------------------------
    **_group("refused", METHOD, "use_eaft", "eaft_alpha", "eaft_k", "use_pose", "pose_max_context_len",
             "pose_num_chunks", "pose_split_on_token_ids", "relora", "relora_cpu_offload", "relora_prune_method",
             "relora_prune_ratio", "s2_attention",
             "scaling_softmax", "scaling_softmax_factor", "use_onebitllms", "use_mora", "mora_type", "mora",
             "grokfast_alpha", "grokfast_lamb", "diffusion", "noise_schedule", "min_mask_ratio", "max_mask_ratio",
             "num_diffusion_steps", "eps", "importance_weighting", "mask_token_id", "mask_token_str"),
    **_group("refused", "a teacher served by vLLM or SGLang is not in axo; `teacher_model: PATH` runs the teacher "
             "in axo's processes (the same top-k distillation, `kd_online_topk`)", "kd_online_server_base_url",
             "kd_online_server", "kd_online_timeout"),
    **_group("refused", "Spectrum (train only the highest-SNR layers) is not in axo; "
             "`unfrozen_parameters` freezes layers by name", "spectrum_top_fraction", "spectrum_model_name"),
    **_group("refused", "a learning-rate schedule axo does not have: it would train with another schedule. "
             "Nearest: `lr_scheduler` (cosine, cosine_with_min_lr, warmup_stable_decay...)",
             "jagged_restart_steps", "jagged_restart_warmup_steps",
             "jagged_restart_anneal_steps", "lr_div_factor", "lr_groups", "embedding_lr", "embedding_lr_scale"),
    **_group("refused", "an optimizer axo does not have (it would train with another). Nearest: `optimizer` "
             "adamw_torch, adamw_8bit, muon...", "dion_lr", "dion_momentum", "dion_rank_fraction",
             "dion_rank_multiple_of", "qgalore_cos_threshold", "qgalore_gamma_proj", "qgalore_proj_bits",
             "qgalore_proj_group_size", "qgalore_proj_quant", "qgalore_proj_type", "qgalore_queue_size",
             "qgalore_rank", "qgalore_scale", "qgalore_update_proj_gap", "adam_beta3", "adam_epsilon2"),
    **_group("refused", "fp8 training changes the numerics of every matmul and needs an FP8 GPU; train in bf16",
             "fp8", "fp8_config", "fp8_enable_fsdp_float8_all_gather", "fsdp_config.mixed_precision_policy"),
    **_group("refused", "keeps norms in fp32 while the rest trains in bf16; axo trains one precision (fp32 on "
             "a CPU, where this holds anyway). Remove it", "fp32_norms", "fp32_norm_classes"),
    "trainer_cls": Rule("refused", "a custom trainer class would replace what axo trains; axo's trainers are its "
                        "recipes (axo.methods)"),
    "peft": Rule("refused", "LoftQ initialization (`peft.loftq_config`) is not in axo yet; LoRA starts from zero"),
    "fix_untrained_tokens": Rule("refused", "rewrites embedding rows before training, which axo does not do yet"),
    "shrink_embeddings": Rule("refused", "shrinks the vocabulary of the model, which axo does not do"),
    "role_boundaries": Rule("refused", "custom role markers for label masking; axo finds turns by rendering the "
                            "chat template (roles_to_train, train_on_eos)"),
    "pretraining_sample_concatenation": Rule("refused", "axo always joins pretraining documents with EOS into "
                                             "full blocks; rows one by one are not supported"),
    "streaming": Rule("refused", "streaming non-pretraining datasets is not in axo; use `pretraining_dataset` "
                      "for streamed raw text, or prepare the data once"),
    "dataset_shard_num": Rule("refused", "training on one shard of the data is not in axo yet; shard the files"),
    "dataset_shard_idx": Rule("refused", "training on one shard of the data is not in axo yet; shard the files"),
    "num_dataset_shards_to_save": Rule("refused", "axo saves prepared data whole"),
    "shuffle_before_merging_datasets": Rule("refused", "per-dataset shuffling before mixing is not in axo; "
                                            "`shuffle_merged_datasets` shuffles the mix"),
    "eval_sequence_len": Rule("refused", "a separate eval length is not in axo yet; eval rows use `sequence_len`"),
    "cls_model_config": Rule("refused", "classifier configs come from `model_type` and `num_labels` in axo"),
    "max_packed_sequence_len": Rule("refused", "Axolotl's old packing length; axo packs to `sequence_len` with "
                                    "`sample_packing: true`"),
    **_group("refused", "a DPO variant TRL 1.16 lacks or axo does not pass yet; `dpo_loss_type` picks the loss",
             "dpo_loss_weights", "dpo_norm_loss", "dpo_use_weighting", "rpo_alpha", "dpo_generate_during_eval"),
    **_group("speed", "reporting only: Axolotl's MMLU-style bench scores at each eval (its bench sets come from "
             "the hub) are not computed; `lm_eval_tasks` scores the model with lm-evaluation-harness after training",
             "do_bench_eval", "bench_dataset", "bench_split"),
    **_group("refused", "generating samples during training is not in axo yet (the samples you asked for would be "
             "missing); `do_causal_lm_eval` generates and scores answers at each eval", "generate_samples", "num_generation_samples", "generation_max_new_tokens", "generation_temperature",
             "generation_top_k", "generation_top_p", "generation_do_sample", "generation_prompt_ratio",
             "generation_interval", "generation_steps", "generation_max_length"),
    **_group("refused", "this tracker option is not passed by axo yet (what you asked to be logged would be "
             "missing); the tracker itself works (use_swanlab, use_comet)", "comet_experiment_config",
             "swanlab_lark_webhook_url", "swanlab_lark_secret"),
    **_group("speed", "logging only: Axolotl's SwanLab table of RLHF completions reads log keys (dpo/chosen, "
             "grpo/completion...) that TRL's trainers do not write, so it stays empty there too; GRPO's sampled "
             "completions: `trl.log_completions`", "swanlab_log_completions", "swanlab_completion_log_interval",
             "swanlab_completion_max_buffer"),
    **_group("refused", "Tinker/hatchery remote training is not in axo", "backend", "base_url", "api_key",
             "project_id", "lora_rank", "train_attn", "train_mlp", "train_unembed", "loss_fn", "loss_fn_config",
             "pipeline", "max_sample_tokens", "sample_temperature", "num_samples", "save_name_prefix",
             "future_timeout", "hatchery", "reward_funcs"),
    **_group("mapped", "a key of Axolotl's cloud launcher files (`axolotl train --cloud modal.yaml`), which say "
             "where to run: Axolotl's training config never read it, and axo runs where it is started "
             "(`accelerate launch`, `torchrun`, Ray)", "provider", "gpu", "gpu_count", "node_count", "volumes",
             "secrets", "branch", "dockerfile_commands", "memory", "timeout", "memory_preprocess",
             "timeout_preprocess", "project_name"),
    **_group("refused", "NeMo Gym environments are not in axo; GRPO reads `trl.reward_funcs`", "nemo_gym_enabled",
             "nemo_gym_dir", "nemo_gym_auto_clone", "nemo_gym_config_paths", "nemo_gym_head_port",
             "nemo_gym_server_timeout", "nemo_gym_verify_timeout", "nemo_gym_run_timeout", "nemo_gym_datasets",
             "nemo_gym_auto_start", "nemo_gym_model_name", "nemo_gym_multi_turn", "nemo_gym_max_turns"),
    **_group("refused", STRIDED_EBFT, *(f"ebft.{key}" for key in (
        "stride", "context_length", "generate_max_len", "n_samples_per_prompt", "temperature", "top_p", "rl_coef",
        "advantage_estimator", "min_completion_prefix"))),
    **_group("refused", "NVFP4 merge-aware training needs Blackwell GPUs and is not in axo", "nvfp4_merge_aware",
             "nvfp4_merge_aware_start_step"),
    # --- keys of the `trl:` block TRL 1.16 does not have -------------------------------------------
    **_group("speed", "a GRPO throughput option TRL 1.16 does not have; rollouts run one after the other",
             "trl.async_prefetch", "trl.prefetch_depth", "trl.reward_num_workers", "trl.vllm_lora_sync",
             "trl.use_liger_loss"),
    **_group("refused", "a GRPO variant TRL 1.16 does not have: it would change which samples train. Nearest: "
             "`trl.loss_type`, `trl.importance_sampling_level`, `trl.epsilon_high`", "trl.rollout_func",
             "trl.skip_zero_advantage_batches", "trl.vllm_guided_decoding_regex", "trl.vllm_sync_interval",
             "trl.entropy_coef_delta", "trl.entropy_coef_max", "trl.entropy_coef_min", "trl.entropy_target",
             "trl.use_adaptive_entropy", "trl.replay_buffer_size", "trl.replay_recompute_logps",
             "trl.reroll_max_groups", "trl.reroll_start_fraction", "trl.streaming_min_groups",
             "trl.streaming_partial_batch", "trl.use_data_producer"),
    # --- keys of older Axolotl releases, no longer read by the newest (their versions: axolotl_history.tsv)
    "eval_table_max_new_tokens": old_name("eval_max_new_tokens", "Axolotl's old name of `eval_max_new_tokens`"),
    "push_to_hub_model_id": old_name("hub_model_id", "Axolotl's old name of `hub_model_id`"),
    "adamw_beta1": old_name("adam_beta1", "Axolotl's first name of `adam_beta1`"),
    "adamw_beta2": old_name("adam_beta2", "Axolotl's first name of `adam_beta2`"),
    "adamw_epsilon": old_name("adam_epsilon", "Axolotl's first name of `adam_epsilon`"),
    "datasets.train_on_split": old_name("split", "Axolotl's old name of the entry's `split`"),
    "bloat16": mapped("old Axolotl read it only to silence its own precision warning; `bf16` sets the precision"),
    "inference": mapped("set by old Axolotl's own inference command; " + NOT_TRAINING),
    "model_config_type": mapped("axo reads the architecture from the model's config"),
    "datasets.strict": mapped("old sharegpt rows' role check: axo's chat rows with a role it cannot place are "
                              "errors (or skipped and counted with `skip_bad_rows`)"),
    "collator_pad_to_longest": mapped("axo pads each micro-batch to its longest row (padding is never trained)"),
    **_group("speed", "Unsloth's fused kernels (a CUDA GPU); the same math runs without them",
             "unsloth_cross_entropy_loss", "unsloth_lora_mlp", "unsloth_lora_o", "unsloth_lora_qkv",
             "unsloth_rms_norm", "unsloth_rope"),
    "flash_attn_fuse_qkv": Rule("speed", "flash-attention's fused QKV projection (a CUDA GPU); the same math runs "
                                "without it"),
    "gradient_checkpointing_ratio": Rule("speed", "memory only: checkpointing a share of the layers; "
                                         "`gradient_checkpointing` checkpoints them all"),
    **_group("refused", "ReLoRA (periodic restarts that merge the adapter into the base) is not in axo: it would "
             "learn something else. Nearest: LoRA", "relora_steps", "relora_warmup_steps", "relora_anneal_steps"),
    "landmark_attention": Rule("refused", "landmark attention changes the model's attention; not in axo"),
    "xpos_rope": Rule("refused", "XPos rotary embeddings change the model's positions; not in axo"),
    "peft_adapter": Rule("refused", "llama-adapter (prefix tuning) is not in axo; LoRA is (`adapter: lora`)"),
    "load_4bit": Rule("refused", "old Axolotl's 4-bit GPTQ loading, refused by Axolotl itself since 0.3; a GPTQ "
                      "checkpoint loads with `gptq: true`, a 4-bit base for LoRA with `adapter: qlora`"),
    **_group("refused", "an LR range test (a sweep of learning rates) is not in axo; it would train with other "
             "rates. Set `learning_rate`", "log_sweep_max_lr", "log_sweep_min_lr"),
    **_group("refused", "an early option of Axolotl's KD plugin (2025), which changed the distillation loss; "
             "axo's KD: `kd_temperature`, `kd_normalize_topk`", "kd_top_k_before_softmax", "kd_zscore_base_temp"),
    **_group("refused", "LLM Compressor (sparse or quantized training through llmcompressor's recipes) is not in "
             "axo; QAT is (`qat:`)", "llmcompressor", "recipe", "save_compressed"),
    "rl_adapter_ref_model": Rule("refused", "a reference model loaded with the run's adapter (`lora_model_dir`) is "
                                 "not in axo; its reference is the base without the adapter (TRL's way)"),
    **_group("refused", "synthetic datasets (random tokens, for benchmarks) are not in axo; point `path` at data",
             *(f"datasets.{k}" for k in ("length", "sequence_length", "min_input_id", "max_input_id", "seed"))),
    "datasets.text_column": mapped("a pretraining entry's name for the column of raw text: `field` (of `type: "
                                   "completion`)", to("field")),
    "datasets.skip": Rule("refused", "skipping the first rows of a dataset is not in axo yet; cut the file"),
    # --- keys inside a dataset entry --------------------------------------------------------------
    "datasets.message_field_training_detail": Rule("refused", "per-span training inside a message is not in axo "
                                                   "yet; `message_field_training` trains whole messages"),
    "datasets.split_thinking": Rule("refused", "splitting reasoning out of message content is not in axo yet; give "
                                    "it its own message key with `field_thinking`"),
    **_group("refused", "an older conversation format; use `type: chat_template` with `field_messages`",
             "datasets.conversation", "datasets.field_human", "datasets.field_model", "datasets.input_format",
             "datasets.input_transform"),
    "datasets.preprocess_shards": Rule("speed", "memory only: preparing the entry in that many chunks; axo "
                                       "prepares it in batches through Arrow"),
    "datasets.max_completion_length": mapped(
        "empty in Axolotl's process-reward example: axo keeps whole step completions (rows longer than "
        "`sequence_len` follow `excess_length_strategy`); a number, which would cut them, is refused",
        lambda v: {"__refused__": "cutting step completions to a length is not in axo; rows longer than "
                   "`sequence_len` follow `excess_length_strategy`. Remove it"}),
    "datasets.trust_remote_code": mapped("datasets (4 and later) runs no loading scripts: the entry loads from its "
                                         "data files, as it does in Axolotl today"),
    # --- fsdp_config, in FSDP1's spelling ---------------------------------------------------------
    "fsdp_config.sharding_strategy": mapped("FSDP2's `reshard_after_forward` (FULL_SHARD: true, SHARD_GRAD_OP: "
                                            "false)", lambda v: _sharding(v)),
    "fsdp_config.backward_prefetch": mapped("FSDP2 prefetches on its own"),
    "fsdp_config.forward_prefetch": mapped("FSDP2 prefetches on its own"),
    "fsdp_config.limit_all_gathers": mapped("FSDP2 has no such limit"),
}


# axo keys that change where, how fast or how visibly a run goes, never what it learns (so do all keys of
# the logging and parallel areas): a run resumes across a change of them (train/identity.py), and an
# unknown key one edit away from one of them is a warning, not an error (config/loader.py).
NOT_LEARNED = {
    "output_dir", "resume_from_checkpoint", "auto_resume_from_checkpoints", "overwrite_output_dir",
    "save_steps", "saves_per_epoch", "save_strategy", "save_total_limit", "save_first_step", "save_only_model",
    "logging_steps", "eval_steps", "evals_per_epoch", "eval_strategy", "eval_batch_size", "load_best_model_at_end",
    "metric_for_best_model", "greater_is_better", "early_stopping_patience", "loss_watchdog_threshold",
    "loss_watchdog_patience", "do_causal_lm_eval", "eval_causal_lm_metrics", "eval_max_new_tokens", "eval_table_size",
    "dataloader_num_workers", "dataloader_pin_memory", "dataloader_prefetch_factor", "dataset_processes",
    "dataset_prepared_path", "push_dataset_to_hub", "skip_bad_rows", "hub_model_id", "hub_strategy",
    "hub_private_repo", "hub_revision", "include_tokens_per_second", "torch_compile", "torch_compile_backend",
    "torch_compile_mode", "torch_empty_cache_steps", "gradient_checkpointing", "gradient_checkpointing_kwargs",
    "device_map", "max_memory", "low_cpu_mem_usage", "attn_implementation", "use_liger_kernel",
    "liger_kernel_config", "chunked_cross_entropy_num_chunks", "auto_find_batch_size", "lm_eval_tasks",
    "lm_eval_batch_size", "lm_eval_post_train", "lm_eval_model",
}


# Keys no Axolotl release read that users' configs often hold (bench/user_configs.py counts them): what
# each is, for the warning, instead of only the closest key. `datasets.key` for a dataset entry's.
BNB = ("transformers' BitsAndBytesConfig field, which no Axolotl release read: QLoRA's 4-bit base is nf4 with double "
       "quantization, computing in the run's precision, in Axolotl and in axo (`bnb_config_kwargs` changes them)")
UNREAD_NOTES = {
    **dict.fromkeys(("bnb_4bit_quant_type", "bnb_4bit_use_double_quant", "bnb_4bit_compute_dtype", "use_nested_quant",
                     "bnb_4bit_quant_storage"), BNB),
    "quantization_config": "transformers' name; Axolotl's and axo's is `model_quantization_config` (or `load_in_4bit`)",
    "data_seed": "transformers' field, which no Axolotl release read: `seed` also orders the data",
    "report_to": "transformers' field, which no Axolotl release read: the trackers follow `wandb_project`, "
                 "`use_mlflow`, `use_tensorboard`...",
    **dict.fromkeys(("logging_dir", "tensorboard_log_dir"), "no Axolotl release read it: TensorBoard logs go to "
                    "output_dir/runs (`use_tensorboard: true`)"),
    "safe_serialization": "transformers' field, which no Axolotl release read: axo saves safetensors always",
    "push_to_hub": "transformers' field, which no Axolotl release read: a run is pushed when `hub_model_id` is set",
    "hub_token": "no Axolotl release read it: log in once (`huggingface-cli login`) or set HF_TOKEN",
    "hub_repo": "no Axolotl release read it: `hub_model_id` names the repository to push to",
    "model_card": "no Axolotl release read it: the hub repository gets transformers' model card",
    "epochs": "no Axolotl release read it: `num_epochs` is the key, so the run keeps its default (1)",
    "tokenizer_padding_side": "no Axolotl release read it: padding is never trained, so its side changes nothing",
    "dataloader_persistent_workers": "transformers' field, which no Axolotl release read: data loading speed only",
    **{f"datasets.{k}": f"a key of a `type:` mapping (`type: {{{k}: ...}}`), which is the only place Axolotl read "
       "it; beside a named type the type's own columns are read" for k in ("field_instruction", "field_input",
                                                                           "field_output", "field_system")},
    "datasets.min_sample_len": "a top-level key (`min_sample_len`), which Axolotl read only there",
    "datasets.streaming": "no Axolotl release read it in a dataset entry; prepared data is streamed from disk",
}


def learned(key: str) -> bool:
    """Whether a key decides what is learned: an axo key (`block.key` inside a block, `datasets.key` in a
    dataset entry), or an Axolotl key of TABLE (a mapped one when what it becomes does)."""
    from axo.config.axolotl import ALIASES, ATTENTION_FLAGS
    from axo.config.root import KEY_AREA

    block, _, inner = key.partition(".")
    if key in TABLE:
        rule = TABLE[key]
        if rule.cls != "mapped":
            return rule.cls == "refused"
        try:
            becomes = rule.convert(True) if rule.convert else {}
        except Exception:  # a conversion that needs a real value: assume it matters
            return True
        prefix = f"{block}." if inner else ""
        return any(learned(prefix + target) for target in becomes if target != "__refused__")
    if inner:
        return block == "datasets" or learned(block)
    key = ALIASES.get(key, key)
    if key in ATTENTION_FLAGS or key not in KEY_AREA:  # (a key nothing reads decides nothing)
        return False
    return key not in NOT_LEARNED and KEY_AREA[key] not in ("logging", "parallel")


# Axolotl's values of keys axo has, spelled another way: key -> {Axolotl's value: (axo's value, note)}.
AXOLOTL_DEEPSPEED = {"zero1": "zero1", "zero1_torch_compile": "zero1", "zero2": "zero2",
                     "zero2_torch_compile": "zero2", "zero3": "zero3", "zero3_bf16": "zero3",
                     "zero3_bf16_cpuoffload_params": "zero3_offload_params", "zero3_bf16_cpuoffload_all": "zero3_offload"}
VALUES: dict[str, dict[str, tuple[Any, str]]] = {
    "optimizer": {"ao_adamw_8bit": ("adamw_torch_8bit", "torchao's 8-bit AdamW, as transformers names it"),
                  "ao_adamw_4bit": ("adamw_torch_4bit", "torchao's 4-bit AdamW, as transformers names it")},
    "attn_implementation": {"xformers": ("sdpa", "sdpa computes the same memory-efficient attention")},
}
KD_TYPE = "axolotl.integrations.kd.chat_template"  # its dataset type (and .load_legacy)
# `rl:` values that are GRPO with one option set: -> the `trl:` option, and what it does.
RL_VARIANTS = {
    "gdpo": ("multi_objective_aggregation", "normalize_then_sum",
             "GRPO whose rewards are each normalized before they are summed"),
    "gspo": ("importance_sampling_level", "sequence", "GRPO with one importance ratio per answer (GSPO)"),
}
# Axolotl's values axo refuses: another optimizer would learn differently.
REFUSED_VALUES: dict[str, dict[str, str]] = {
    "optimizer": {name: f"Axolotl's `{name}` optimizer is not in axo yet; another optimizer would learn "
                  "differently. Nearest: adamw_torch (or adamw_torch_8bit to save memory)"
                  for name in ("dion", "adopt_adamw", "came_pytorch", "optimi_adamw", "ao_adamw_fp8",
                               "adamc", "sinkgd", "polora", "flash_adamw", "flash_adam", "flash_sgd", "flash_sgdw",
                               "flash_lion", "q_galore_adamw8bit")},
    "datasets.type": {name: "an older prompt format axo does not write; use `type: alpaca`, a user-defined "
                      "mapping under `type:`, or `type: chat_template`"
                      for name in ("reflection", "explainchoice", "concisechoice", "summarizetldr", "metharme",
                                   "orcamini", "pygmalion", "creative_acr", "llama2_chat")},
}


# FastChat conversation templates named by old `type: sharegpt` entries -> axo's built-in templates.
SHAREGPT_CONVERSATIONS = {"chatml": "chatml", "llama-3": "llama3", "llama3": "llama3"}


def sharegpt_entry(entry: dict) -> tuple[dict, str] | None:
    """An old `type: sharegpt` entry as the `type: chat_template` entry that reads the same rows the
    same way (turns of `from`/`value`, human -> user, gpt -> assistant, only gpt turns trained), and
    the modern spelling to show; None when the entry is not sharegpt, or names a conversation
    template axo does not have (then the type's own error stands)."""
    kind = entry.get("type")
    if not (isinstance(kind, str) and kind.split(":")[0].split(".")[0] == "sharegpt"):
        return None
    conversation = entry.get("conversation")
    if conversation and conversation not in SHAREGPT_CONVERSATIONS:
        return None
    new = {k: v for k, v in entry.items() if k not in ("type", "conversation", "field_human", "field_model")}
    new.update(type="chat_template", field_messages=entry.get("field_messages") or "conversations",
               message_property_mappings=entry.get("message_property_mappings") or {"role": "from", "content": "value"})
    roles = {"user": [entry.get("field_human") or "human"], "assistant": [entry.get("field_model") or "gpt"]}
    new["roles"] = {**roles, **(entry.get("roles") or {})}
    if conversation:
        new["chat_template"] = SHAREGPT_CONVERSATIONS[conversation]
    shown = ", ".join(f"{k}: {v}" for k, v in new.items() if k != "path")
    return new, shown


def deepspeed_preset(value):
    """`deepspeed: deepspeed_configs/zero3_bf16.json` (Axolotl's shipped files, by name) when no such
    file exists: axo's preset of the same meaning (bf16 follows the run's precision in every preset)."""
    from pathlib import Path

    if isinstance(value, str) and not Path(value).is_file():
        stem = Path(value).stem
        return AXOLOTL_DEEPSPEED.get(stem) or AXOLOTL_DEEPSPEED.get(_zero_stage(stem))
    return None


def _zero_stage(name: str) -> str | None:
    """A file's name that says its ZeRO stage (`ds_zero2.json`, `deepspeed_zero3_offload.json`), as Axolotl's
    names for it; a stage only decides where memory goes, never what is learned."""
    import re

    found = re.search(r"(?:zero|\bz|_z)[_-]?([123])(.*)", name.lower())
    if not found:
        return None
    stage, rest = found.groups()
    return "zero3_bf16_cpuoffload_all" if stage == "3" and "offload" in rest else f"zero{stage}"


def _sharding(value) -> dict:
    strategy = str(value).upper().split(".")[-1]
    if strategy in ("FULL_SHARD", "1", "HYBRID_SHARD"):
        return {"reshard_after_forward": True}
    if strategy in ("SHARD_GRAD_OP", "2", "_HYBRID_SHARD_ZERO2"):
        return {"reshard_after_forward": False}
    return {"__refused__": f"sharding strategy {value!r} has no FSDP2 equivalent (NO_SHARD: train DDP instead)"}


@cache
def history() -> dict[tuple[str, str], tuple[str, str, bool]]:
    """(where, key) -> (the first Axolotl version that read it, the last, whether the newest does), for
    where in top, dataset (a key of a dataset entry) and type (a dataset `type`), from
    axolotl_history.tsv (bench/axolotl_history.py wrote it from Axolotl's git history)."""
    from importlib import resources

    out = {}
    for line in resources.files("axo.config").joinpath("axolotl_history.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            where, key, first, last, newest = line.split("\t")
            out[(where, key)] = (first, last, newest == "yes")
    return out


def read_by(key: str) -> str:
    """When Axolotl read a key (`datasets.key` for an entry's, `datasets.type: name` for a type): `0.3.0 –
    today`, `2023-10 – 2024-02` (main between releases), or `—` where it has no history here (nested
    blocks, plugins)."""
    if key.startswith("datasets.type: "):
        where, name = "type", key.split(": ", 1)[1]
    elif key.startswith("datasets."):
        where, name = "dataset", key.split(".", 1)[1]
    else:
        where, name = "top", key
    seen = history().get((where, name))
    if seen is None:
        return "—"
    first, last, newest = seen
    return f"{first.removeprefix('main@')} – {'today' if newest else last.removeprefix('main@')}"


def _spans(keys: list[str]) -> str:
    spans = {k: read_by(k) for k in keys}
    if len(set(spans.values())) == 1:
        return next(iter(spans.values()))
    return "; ".join(f"`{k}` {v}" for k, v in sorted(spans.items()))


def markdown() -> str:
    """The README's compatibility table: every Axolotl key by class, keys with the same note in one row."""
    from axo.config.axolotl import ALIASES, ATTENTION_FLAGS, axolotl_keys
    from axo.config.root import KEY_AREA

    keys = axolotl_keys()
    implemented = sorted(k for k in keys["top"] | keys["plugin"] if k in KEY_AREA)
    aliases = {**{k: f"axo's `{v}`" for k, v in ALIASES.items()},
               **{k: f"`attn_implementation: {v}` when true" for k, v in ATTENTION_FLAGS.items()}}
    lines = [f"**Implemented** ({len(implemented)} top-level keys, and the keys of `datasets:`, `trl:`, `fsdp_config:`, "
             "`qat:`, `quantization:`, `special_tokens:` that axo's config has): "
             + ", ".join(f"`{k}`" for k in implemented) + ".", ""]
    titles = {"mapped": "Mapped (logged once at load: what the key asked for and what axo does)",
              "speed": "Speed or memory only, not available here (one warning; what is learned never changes)",
              "refused": "Refused (an error: its absence would change what is learned or where data goes)"}
    for cls, title in titles.items():
        by_note: dict[str, list[str]] = {}
        if cls == "mapped":
            for key, note in aliases.items():
                by_note.setdefault(note, []).append(key)
        for key, rule in TABLE.items():
            if rule.cls == cls:
                by_note.setdefault(rule.note, []).append(key)
        for value_key, choices in (VALUES if cls == "mapped" else {}).items():
            for value, (new, note) in choices.items():
                by_note.setdefault(f"{note} (`{new}`)", []).append(f"{value_key}: {value}")
        for variant, (key, value, note) in (RL_VARIANTS if cls == "mapped" else {}).items():
            by_note.setdefault(f"{note} (`rl: grpo`, `trl.{key}: {value}`)", []).append(f"rl: {variant}")
        for value_key, refused in (REFUSED_VALUES if cls == "refused" else {}).items():
            for value, note in refused.items():
                by_note.setdefault(note, []).append(f"{value_key}: {value}")
        count = sum(len(v) for v in by_note.values())
        lines += [f"**{title}**, {count} keys or values:", "", "| keys | " + (
            "what axo does" if cls == "mapped" else "what would enable it" if cls == "speed" else "why, and the nearest option")
            + " | read by Axolotl |", "|---|---|---|"]
        lines += [f"| {', '.join(f'`{k}`' for k in sorted(ks))} | {note} | {_spans(ks)} |" for note, ks in by_note.items()]
        if cls == "refused":
            lines += [f"| {label} | {note} | — |" for label, note in COMBINATIONS.values()]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":  # python -m axo.config.compat > table.md
    print(markdown(), end="")
