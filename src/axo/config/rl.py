"""Preference learning and reward models, trained through TRL."""

from typing import ClassVar, Literal

from pydantic import Field

from axo.config.base import Area
from axo.methods import METHOD_OPTIONS, METHODS, RL_VALUES, method_name, training_name

RLMethod = Literal[RL_VALUES]
REWARDED = ("grpo", "rloo", "online_dpo")  # methods that sample answers and score them with reward functions


class TRLOptions(Area):
    """The `trl:` block."""

    beta: float | None = Field(None, ge=0, description="Strength of the preference loss, GRPO's KL weight, or the divergence of "
                                "GKD (0 forward KL, 1 reverse KL, between: generalized JSD).")
    max_completion_length: int | None = Field(None, gt=0, description="Longest completion (ORPO, SimPO, GRPO, RLOO, Online "
                                                 "DPO, GKD).")
    # GRPO
    reward_funcs: list[str] | None = Field(
        None, description="GRPO, RLOO, Online DPO: dotted paths to reward functions, f(prompts, completions, **columns) -> list[float], "
        "in a module next to the config or installed.")
    reward_weights: list[float] | None = Field(None, description="GRPO: weight of each reward function.")
    num_generations: int | None = Field(None, ge=2, description="GRPO: completions sampled per prompt.")
    temperature: float | None = Field(None, gt=0, description="Sampling temperature (GRPO, RLOO, Online DPO, GKD).")
    epsilon: float | None = Field(None, gt=0, description="GRPO: clipping range of the policy ratio.")
    loss_type: str | None = Field(None, description="GRPO: grpo, dr_grpo, dapo, bnpo... as TRL offers them; "
                                     "Online DPO: sigmoid or ipo.")
    scale_rewards: bool | Literal["group", "batch", "none"] | None = Field(None, description="GRPO: reward scaling.")
    mask_truncated_completions: bool | None = Field(None, description="GRPO: no loss on cut-off completions.")
    log_completions: bool | None = Field(None, description="GRPO: log sampled completions.")
    use_vllm: bool = Field(False, description="GRPO: generate with vLLM (GPU; `axo vllm-serve` for server mode).")
    vllm_mode: Literal["server", "colocate"] | None = Field(None, description="GRPO: vLLM in its own server or in-process.")
    vllm_server_host: str | None = Field(None, description="GRPO: host of `axo vllm-serve`.")
    vllm_server_port: int | None = Field(None, description="GRPO: port of `axo vllm-serve`.")
    # GRPO options passed to TRL's GRPOConfig as they are (TRL documents each).
    top_p: float | None = Field(None, gt=0, le=1, description="GRPO: nucleus sampling.")
    top_k: int | None = Field(None, ge=0, description="GRPO: top-k sampling.")
    min_p: float | None = Field(None, ge=0, le=1, description="GRPO: min-p sampling.")
    repetition_penalty: float | None = Field(None, gt=0, description="GRPO: repetition penalty when sampling.")
    generation_kwargs: dict | None = Field(None, description="GRPO: more generation arguments.")
    generation_batch_size: int | None = Field(None, gt=0, description="GRPO: prompts x generations per generation.")
    chat_template_kwargs: dict | None = Field(None, description="GRPO: chat template variables for the prompts.")
    num_iterations: int | None = Field(None, ge=1, description="GRPO: optimization passes per generation.")
    epsilon_high: float | None = Field(None, gt=0, description="GRPO: upper clipping range (DAPO).")
    importance_sampling_level: Literal["token", "sequence"] | None = Field(
        None, description="GRPO: token or sequence (GSPO) importance ratios.")
    entropy_coef: float | None = Field(None, description="GRPO: entropy bonus weight.")
    off_policy_mask_threshold: float | None = Field(None, description="GRPO: mask off-policy tokens above this.")
    use_bias_correction_kl: bool | None = Field(None, description="GRPO: bias-corrected KL estimate.")
    multi_objective_aggregation: str | None = Field(None, description="GRPO: how several rewards combine.")
    sync_ref_model: bool | None = Field(None, description="GRPO: move the reference model toward the policy.")
    ref_model_mixup_alpha: float | None = Field(None, ge=0, le=1, description="GRPO: reference sync mixing.")
    ref_model_sync_steps: int | None = Field(None, gt=0, description="GRPO: steps between reference syncs.")
    num_completions_to_print: int | None = Field(None, ge=0, description="GRPO: completions printed per log.")
    log_multimodal: bool | None = Field(None, description="GRPO: log images with completions.")
    vllm_server_timeout: float | None = Field(None, gt=0, description="GRPO: seconds to wait for `axo vllm-serve`.")
    vllm_enable_sleep_mode: bool | None = Field(None, description="GRPO: let colocated vLLM sleep between steps.")
    vllm_importance_sampling_correction: bool | None = Field(
        None, description="GRPO: correct for vLLM's sampling distribution.")
    vllm_importance_sampling_mode: str | None = Field(None, description="GRPO: how that correction is applied.")
    vllm_importance_sampling_cap: float | None = Field(None, gt=0, description="GRPO: cap of that correction.")
    vllm_importance_sampling_clip_min: float | None = Field(None, description="GRPO: lower clip of that correction.")
    vllm_importance_sampling_clip_max: float | None = Field(None, description="GRPO: upper clip of that correction.")
    # RLOO and Online DPO
    normalize_advantages: bool | None = Field(None, description="RLOO: scale advantages to unit variance.")
    reward_clip_range: tuple[float, float] | None = Field(None, description="RLOO: clip rewards to [low, high].")
    missing_eos_penalty: float | None = Field(
        None, description="Online DPO: subtracted from the reward of a completion that never ends (no EOS).")
    # GKD
    lmbda: float | None = Field(None, ge=0, le=1, description="GKD: share of steps trained on the student's own "
                                "sampled answers (on-policy) rather than the dataset's.")
    seq_kd: bool | None = Field(None, description="GKD: on the other steps, train on the teacher's sampled answers "
                                "(sequence-level KD) instead of the dataset's.")

    def check(self):
        if self.reward_weights and len(self.reward_weights) != len(self.reward_funcs or []):
            yield ("reward_weights",), "needs one weight per `trl.reward_funcs` entry"


class EBFTOptions(Area):
    """The `ebft:` block of `rl: ebft` (energy-based fine-tuning, Jelassi et al. 2026): GRPO whose reward
    is how well a sampled answer's features match the reference answer's, read off a frozen copy of
    the starting model, minus how alike the answers to one prompt are."""

    mode: Literal["structured", "strided"] = Field(
        "structured", description="structured: prompt and reference-answer rows (`ground_truth`), sampled "
        "like GRPO. strided (rollouts inside raw documents) is not in axo yet.")
    feature_layers: list[float] = Field(
        [0.25, 0.5, 0.75], min_length=1, description="Depths (fractions of the layers; 0: the embeddings) whose "
        "hidden states, concatenated, are the features.")
    embed_method: Literal["last_token", "mean_pooling", "completion_mean", "concat"] = Field(
        "last_token", description="One vector per sequence: the last token's features, the mean over the "
        "sequence or over the answer only, or the features at 1/4, 1/2 and 3/4 of it, concatenated.")
    use_whitening: bool = Field(
        False, description="Whiten each prompt's features by the SVD of its sampled answers' features (no "
        "direction dominates); otherwise they are L2-normalised.")
    alignment_coef: float = Field(1.0, description="Weight of alignment: 2 x cosine(answer, reference).")
    diversity_coef: float = Field(
        1.0, description="Weight of the diversity penalty: 2 x mean dot product with the prompt's other answers.")
    ce_coef: float = Field(0.0, ge=0, description="Cross-entropy on the reference answer, mixed into the loss "
                           "(not in axo yet: 0).")
    adaptive_max_tokens: bool = Field(
        True, description="Axolotl's vLLM path caps each batch's completions at gt_length_multiplier x the "
        "longest reference; axo generates up to `trl.max_completion_length`.")
    gt_length_multiplier: float = Field(1.5, gt=0, description="See adaptive_max_tokens.")

    def check(self):
        from axo.config.compat import STRIDED_EBFT

        if self.mode == "strided":
            yield ("mode",), STRIDED_EBFT
        if self.ce_coef:
            yield ("ce_coef",), "the cross-entropy term on the reference answer is not in axo's EBFT yet; set 0"
        if any(not 0 <= f <= 1 for f in self.feature_layers):
            yield ("feature_layers",), "each depth is a fraction of the model's layers, from 0 to 1"


class VLLMOptions(Area):
    """The `vllm:` block: how `axo vllm-serve` starts the vLLM server GRPO samples from."""

    host: str | None = Field(None, description="Address to serve on (and for training to reach, unless "
                             "`trl.vllm_server_host` says otherwise).")
    port: int | None = Field(None, description="Port, likewise (`trl.vllm_server_port`).")
    tensor_parallel_size: int | None = Field(None, gt=0, description="GPUs one model copy is split over.")
    data_parallel_size: int | None = Field(None, gt=0, description="Model copies serving side by side.")
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1, description="Share of GPU memory vLLM takes.")
    dtype: str | None = Field(None, description="Weights' dtype in vLLM (auto, bfloat16...).")
    max_model_len: int | None = Field(None, gt=0, description="Longest prompt + completion vLLM serves.")
    enable_prefix_caching: bool | None = Field(None, description="Reuse the KV cache of shared prompt prefixes.")
    enforce_eager: bool | None = Field(None, description="No CUDA graphs (less memory, slower).")
    # Axolotl's own server options: TRL's server has no equivalent and returns the same tokens without them.
    device: str | None = Field(None, description="Not passed: vLLM uses the GPUs CUDA_VISIBLE_DEVICES shows.")
    enable_reasoning: bool | None = Field(None, description="Not passed: TRL's server returns token ids.")
    reasoning_parser: str | None = Field(None, description="Not passed: TRL's server returns token ids.")
    serve_module: str | None = Field(None, description="Not passed: axo serves with `trl vllm-serve`.")
    worker_extension_cls: str | None = Field(None, description="Not passed: axo serves with `trl vllm-serve`.")

    PASSED: ClassVar[tuple] = ("host", "port", "tensor_parallel_size", "data_parallel_size", "gpu_memory_utilization",
                               "dtype", "max_model_len", "enable_prefix_caching", "enforce_eager")

    def serve_arguments(self) -> list[str]:
        """`trl vllm-serve` arguments for the options set; a note for each one not passed."""
        import logging

        args = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if name in self.PASSED:
                args += [f"--{name}", str(value).lower() if isinstance(value, bool) else str(value)]
            else:
                logging.getLogger("axo").warning("`vllm.%s` is not passed: %s", name,
                                                 type(self).model_fields[name].description.removeprefix("Not passed: "))
        return args


class RLConfig(Area):
    rl: RLMethod | None = Field(None, description="Preference or RL method: " + ", ".join(RL_VALUES) + ".")
    rl_beta: float | None = Field(None, gt=0, description="Strength of the preference loss (Axolotl also: dpo_beta).")
    trl: TRLOptions | None = Field(None, description="TRL options.")
    ebft: EBFTOptions | None = Field(None, description="`rl: ebft`: what the feature-matching reward reads.")
    vllm: VLLMOptions | None = Field(None, description="How `axo vllm-serve` serves the model GRPO samples from.")
    dpo_loss_type: list[str] | None = Field(None, description="DPO loss(es), e.g. [sigmoid], [hinge], [ipo].")
    dpo_label_smoothing: float | None = Field(None, ge=0, lt=0.5, description="Conservative DPO / robust DPO noise.")
    orpo_alpha: float | None = Field(None, gt=0, description="ORPO: weight of the odds-ratio term (TRL's beta).")
    simpo_gamma: float | None = Field(None, ge=0, description="SimPO: target reward margin.")
    cpo_alpha: float | None = Field(None, ge=0, description="SimPO/CPO: weight of the NLL term on chosen answers.")
    kto_desirable_weight: float | None = Field(None, gt=0, description="KTO: weight of desirable rows.")
    kto_undesirable_weight: float | None = Field(None, gt=0, description="KTO: weight of undesirable rows.")
    precompute_ref_log_probs: bool = Field(
        False, description="Compute the reference log-probs once before training, so no reference model stays in memory."
    )
    max_prompt_len: int | None = Field(
        None, gt=0, description="Drop (and count) rows whose prompt is longer than this many tokens."
    )
    center_rewards_coefficient: float | None = Field(
        None, ge=0, description="Reward models: weight of the penalty on the mean reward, which keeps rewards "
        "centred on 0 (TRL's RewardConfig).")
    reward_model: bool = Field(False, description="Train a reward model (a sequence classifier on chosen/rejected pairs).")
    # Knowledge distillation (Axolotl's KD plugin keys) and the teacher of `rl: gkd`
    kd_trainer: bool = Field(
        False, description="Knowledge distillation: SFT rows, the loss pulls the student's next-token "
        "distribution toward a teacher's, from top-k log-probs in the rows (`datasets[].logprobs_field`) or "
        "from `teacher_model` run alongside.")
    teacher_model: str | None = Field(
        None, description="KD and `rl: gkd`: the teacher, a local folder or hub id with the student's tokenizer; "
        "axo loads it frozen next to the student.")
    kd_alpha: float | None = Field(None, ge=0, description="KD: weight of the distillation loss (default 1).")
    kd_ce_alpha: float | None = Field(
        None, ge=0, description="KD: weight of the cross-entropy on the row's own tokens (default 0).")
    kd_temperature: float | None = Field(
        None, gt=0, description="KD: softmax temperature of both distributions (default 1); the divergence is "
        "scaled by its square so gradients keep their size.")
    kd_beta: float | None = Field(
        None, ge=0, le=1, description="KD: 0 forward KL(teacher || student) (default), 1 reverse KL, between: "
        "the generalized Jensen-Shannon divergence with this weight.")
    kd_normalize_topk: bool | None = Field(
        None, description="KD: renormalize the student's probabilities over the teacher's top-k tokens (and an "
        "online teacher's, which are otherwise its full-vocabulary probabilities).")
    kd_online_topk: int | None = Field(
        None, gt=0, description="KD with `teacher_model`: tokens per position the student is compared on "
        "(default: the whole vocabulary, exact distillation).")
    kd_temperature_min: float | None = Field(
        None, gt=0, description="KD with `teacher_model`: the teacher's temperature decays from kd_temperature to "
        "this along a cosine over training.")
    process_reward_model: bool = Field(
        False, description="Train a process reward model (a token classifier scoring each reasoning step)."
    )

    def check(self):
        chosen = [k for k in ("rl", "reward_model", "process_reward_model", "kd_trainer") if getattr(self, k)]
        if len(chosen) > 1:
            yield (chosen[-1],), f"{', '.join(f'`{k}`' for k in chosen)} are different trainings; set one"
            return
        method = METHODS[method_name(self)]
        for key in METHOD_OPTIONS:
            if key not in method.options and self._value(key) not in (None, False):
                users = [m.name for m in METHODS.values() if key in m.options]
                yield tuple(key.split(".")), (f"does nothing with {training_name(method)} (it is read by "
                                              f"{', '.join(users)}); remove it or change the training")
        if method.name in REWARDED and not (self.trl and self.trl.reward_funcs):
            yield ("rl",), (f"`rl: {method.name}` needs reward functions: set "
                            "`trl.reward_funcs: [my_rewards.correct]`")
        if method.name == "gkd" and not self.teacher_model:
            yield ("teacher_model",), "`rl: gkd` distils a teacher: set `teacher_model: path/to/teacher`"
        if self.kd_temperature_min and self.kd_temperature_min > (self.kd_temperature or 1.0):
            yield ("kd_temperature_min",), f"decays from kd_temperature ({self.kd_temperature or 1.0}); set it lower"

    def _value(self, key: str):
        area, _, name = key.rpartition(".")
        owner = self.trl if area == "trl" else self
        return getattr(owner, name) if owner is not None else None

    @property
    def ebft_options(self) -> EBFTOptions:
        """`ebft:`, or Axolotl's defaults when `rl: ebft` comes without the block."""
        return self.ebft or EBFTOptions()

    @property
    def beta(self) -> float | None:
        return (self.trl.beta if self.trl else None) or self.rl_beta

