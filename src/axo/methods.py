"""What each training method is, in one table: the rows it reads, the model it trains, its recipe,
trainer and config mapping, and how its rows are prepared. The config names its method once
(`method_name`, read through `Config.method`); validation, the recipes, `preprocess`, `evaluate`
and `inference` read the entry. Adding a method is one entry here and one recipe file.

Objects are named by dotted paths ("module:name") and imported only when used, so the table costs
nothing to import (the config and the CLI read it)."""

from dataclasses import dataclass
from importlib import import_module

from axo.config.data import KTO_TYPES, PREFERENCE_TYPES, SFT_TYPES, STEPWISE_TYPES, TRANSFORM
PREFERENCE_OPTIONS = ("rl_beta", "trl.beta", "max_prompt_len")


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    row_types: tuple[str, ...]  # dataset `type`s it reads
    tasks: tuple[str, ...]  # model tasks (ModelConfig.task) it trains
    recipe: str  # module whose train(cfg) runs it
    trainer: str  # the library trainer class
    mapping: str  # Config -> the trainer's arguments
    rows: str  # how one dataset entry becomes this method's rows (see axo.data.rows)
    options: tuple[str, ...] = ()  # keys only this method (and its kin) reads
    axo_batches: bool = False  # axo builds batches and labels (SFT_ONLY_KEYS apply), not the library trainer
    truncates: bool = True  # `excess_length_strategy: truncate` can cut its rows
    generates: bool = True  # a causal LM: `axo inference` and `axo evaluate --exact-match` apply
    reference_model: bool = False  # the loss compares with a frozen copy of the starting model

    def load(self, attribute: str):
        """The object a "module:name" field names, imported now."""
        module, _, name = getattr(self, attribute).partition(":")
        return getattr(import_module(module), name) if name else import_module(module)


def _pairs(name: str, trainer: str, mapping: str, summary: str, options: tuple[str, ...],
           reference_model: bool = False) -> Method:
    return Method(name, summary, PREFERENCE_TYPES, ("causal_lm",), "axo.train.preference", trainer,
                  f"axo.train.trl_args:{mapping}", "axo.data.preference:PairRows", PREFERENCE_OPTIONS + options,
                  reference_model=reference_model)


# GRPO options of the `trl:` block handed to TRL's GRPOConfig unchanged.
GRPO_PASSTHROUGH = (
    "top_p", "top_k", "min_p", "repetition_penalty", "generation_kwargs", "generation_batch_size",
    "chat_template_kwargs", "num_iterations", "epsilon_high", "importance_sampling_level", "entropy_coef",
    "off_policy_mask_threshold", "use_bias_correction_kl", "multi_objective_aggregation", "sync_ref_model",
    "ref_model_mixup_alpha", "ref_model_sync_steps", "num_completions_to_print", "log_multimodal",
    "vllm_server_timeout", "vllm_enable_sleep_mode", "vllm_importance_sampling_correction",
    "vllm_importance_sampling_mode", "vllm_importance_sampling_cap", "vllm_importance_sampling_clip_min",
    "vllm_importance_sampling_clip_max",
)
# What GRPO and EBFT read to sample and score completions.
SAMPLING_OPTIONS = (
    "rl_beta", "trl.beta", "max_prompt_len", "trl.max_completion_length", "trl.num_generations", "trl.temperature",
    "trl.epsilon", "trl.loss_type", "trl.scale_rewards", "trl.mask_truncated_completions", "trl.log_completions",
    "trl.use_vllm", "trl.vllm_mode", "trl.vllm_server_host", "trl.vllm_server_port", "vllm",
    *(f"trl.{key}" for key in GRPO_PASSTHROUGH))
DPO_OPTIONS = ("dpo_loss_type", "dpo_label_smoothing", "precompute_ref_log_probs")
REWARD_OPTIONS = ("trl.reward_funcs", "trl.reward_weights")
# What RLOO reads: GRPO's sampling keys that TRL's RLOOConfig has, and its own.
RLOO_OPTIONS = tuple(key for key in SAMPLING_OPTIONS if key.removeprefix("trl.") not in (
    "loss_type", "scale_rewards", "importance_sampling_level", "entropy_coef", "off_policy_mask_threshold",
    "use_bias_correction_kl", "multi_objective_aggregation", "vllm_importance_sampling_correction",
    "vllm_importance_sampling_mode", "vllm_importance_sampling_cap", "vllm_importance_sampling_clip_min",
    "vllm_importance_sampling_clip_max")) + ("trl.normalize_advantages", "trl.reward_clip_range")
ONLINE_DPO_OPTIONS = ("rl_beta", "trl.beta", "max_prompt_len", "trl.max_completion_length", "trl.temperature",
                      "trl.top_p", "trl.top_k", "trl.min_p", "trl.repetition_penalty", "trl.generation_kwargs",
                      "trl.loss_type", "trl.missing_eos_penalty", "trl.use_vllm", "trl.vllm_mode",
                      "trl.vllm_server_host", "trl.vllm_server_port", "trl.vllm_server_timeout", "vllm")
KD_OPTIONS = ("teacher_model", "kd_alpha", "kd_ce_alpha", "kd_temperature", "kd_beta", "kd_normalize_topk",
              "kd_online_topk", "kd_temperature_min")
GKD_OPTIONS = ("teacher_model", "trl.beta", "trl.temperature", "trl.max_completion_length", "trl.lmbda",
               "trl.seq_kd")
METHODS: dict[str, Method] = {m.name: m for m in (
    Method("sft", "supervised fine-tuning", SFT_TYPES, ("causal_lm", "multimodal_lm"), "axo.train.sft",
           "transformers:Trainer", "axo.train.args:to_training_args", "axo.data.rows:sft_rows", axo_batches=True),
    _pairs("dpo", "trl:DPOTrainer", "to_dpo_config", "direct preference optimization", DPO_OPTIONS, True),
    _pairs("ipo", "trl:DPOTrainer", "to_dpo_config", "identity preference optimization", DPO_OPTIONS, True),
    _pairs("orpo", "trl.experimental.orpo:ORPOTrainer", "to_orpo_config", "odds-ratio preference optimization",
           ("orpo_alpha", "trl.max_completion_length")),
    _pairs("simpo", "trl.experimental.cpo:CPOTrainer", "to_simpo_config", "simple preference optimization",
           ("simpo_gamma", "cpo_alpha", "trl.max_completion_length")),
    Method("kto", "Kahneman-Tversky optimization", KTO_TYPES, ("causal_lm",), "axo.train.preference",
           "trl:KTOTrainer", "axo.train.trl_args:to_kto_config", "axo.data.preference:KTORows",
           PREFERENCE_OPTIONS + ("kto_desirable_weight", "kto_undesirable_weight", "precompute_ref_log_probs"),
           reference_model=True),
    Method("reward", "reward model (Bradley-Terry)", PREFERENCE_TYPES, ("sequence_classification",),
           "axo.train.preference", "trl:RewardTrainer", "axo.train.trl_args:to_reward_config",
           "axo.data.preference:PairRows", ("max_prompt_len", "center_rewards_coefficient"), truncates=False,
           generates=False),
    Method("process_reward", "process reward model", STEPWISE_TYPES, ("token_classification",),
           "axo.train.process_reward", "transformers:Trainer", "axo.train.args:to_training_args",
           "axo.data.stepwise:StepRows", generates=False),
    Method("grpo", "group relative policy optimization", ("chat_template", TRANSFORM), ("causal_lm",),
           "axo.train.grpo", "trl:GRPOTrainer", "axo.train.trl_args:to_grpo_config", "axo.data.prompts:PromptRows",
           ("trl.reward_funcs", "trl.reward_weights", *SAMPLING_OPTIONS), truncates=False),
    Method("rloo", "REINFORCE leave-one-out (each answer's baseline: the mean reward of the prompt's others)",
           ("chat_template", TRANSFORM), ("causal_lm",), "axo.train.grpo", "trl:RLOOTrainer",
           "axo.train.trl_args:to_rloo_config", "axo.data.prompts:PromptRows", REWARD_OPTIONS + RLOO_OPTIONS,
           truncates=False),
    Method("online_dpo", "online DPO (two sampled answers per prompt, ranked by the reward functions)",
           ("chat_template", TRANSFORM), ("causal_lm",), "axo.train.grpo",
           "trl.experimental.online_dpo:OnlineDPOTrainer", "axo.train.trl_args:to_online_dpo_config",
           "axo.data.prompts:PromptRows", REWARD_OPTIONS + ONLINE_DPO_OPTIONS, truncates=False),
    Method("kd", "knowledge distillation from a teacher's top-k log-probs (in the rows, or a teacher model)",
           SFT_TYPES, ("causal_lm",), "axo.train.sft", "axo.train.distill:KDTrainer",
           "axo.train.args:to_training_args", "axo.data.distill:KDRows", KD_OPTIONS, axo_batches=True),
    Method("gkd", "generalized knowledge distillation (on-policy: the teacher grades the student's own answers)",
           SFT_TYPES, ("causal_lm",), "axo.train.gkd", "trl.experimental.gkd:GKDTrainer",
           "axo.train.trl_args:to_gkd_config", "axo.data.rows:sft_rows", GKD_OPTIONS),
    Method("ebft", "energy-based fine-tuning (GRPO rewarded by matching the reference answer's features)",
           ("chat_template", TRANSFORM), ("causal_lm",), "axo.train.grpo", "trl:GRPOTrainer",
           "axo.train.trl_args:to_grpo_config", "axo.data.prompts:PromptRows", ("ebft", *SAMPLING_OPTIONS),
           truncates=False),
)}
# The methods chosen by `rl: <name>` (the others by reward_model, process_reward_model, kd_trainer, or none).
RL_VALUES = tuple(name for name in METHODS if name not in ("sft", "reward", "process_reward", "kd"))
# Keys some method reads; set for any other method they are config errors.
METHOD_OPTIONS = tuple(dict.fromkeys(key for m in METHODS.values() for key in m.options))
# axo's batching and label keys, refused for methods whose library trainer builds its own batches.
SFT_ONLY_KEYS = ("sample_packing", "eval_sample_packing", "sample_packing_sequentially", "pad_to_sequence_len",
                "pretraining_dataset", "train_on_inputs")
# Of those, the ones that only shape batches (packing is exact): skipped with a warning elsewhere.
BATCHING_KEYS = ("sample_packing", "eval_sample_packing", "sample_packing_sequentially", "pad_to_sequence_len")


def method_name(rl) -> str:
    """The one place the training method is decided, from the `rl` area's keys."""
    if rl.reward_model:
        return "reward"
    if rl.process_reward_model:
        return "process_reward"
    if rl.kd_trainer:
        return "kd"
    return rl.rl or "sft"


def training_name(method: Method) -> str:
    """How a config spells the method, for messages."""
    return {"sft": "SFT", "reward": "`reward_model: true`", "kd": "`kd_trainer: true`",
            "process_reward": "`process_reward_model: true`"}.get(method.name, f"`rl: {method.name}`")
