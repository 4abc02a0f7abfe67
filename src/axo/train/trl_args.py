"""Config -> TRL trainer configs: one mapping function per method, each on top of the
TrainingArguments fields every axo training shares (train/args.py)."""

from axo.config import Config
from axo.methods import GRPO_PASSTHROUGH
from axo.model.preflight import Precision
from axo.train.args import training_kwargs


def _common(cfg: Config, precision: Precision, has_eval: bool, tf32) -> dict:
    kwargs = training_kwargs(cfg, precision, has_eval, tf32)
    kwargs.update(max_length=cfg.data.sequence_len)
    return kwargs


def _set(**values) -> dict:
    """Only what the user set, so TRL's defaults stay TRL's."""
    return {k: v for k, v in values.items() if v is not None}


def to_dpo_config(cfg: Config, precision: Precision, has_eval: bool, tf32=None):
    from trl import DPOConfig

    r = cfg.rl
    loss_type = r.dpo_loss_type or (["ipo"] if cfg.method.name == "ipo" else None)
    return DPOConfig(**_common(cfg, precision, has_eval, tf32), precompute_ref_log_probs=r.precompute_ref_log_probs,
                     **_set(beta=r.beta, loss_type=loss_type, label_smoothing=r.dpo_label_smoothing))


def to_kto_config(cfg: Config, precision: Precision, has_eval: bool, tf32=None):
    from trl import KTOConfig

    r = cfg.rl
    kwargs = _common(cfg, precision, has_eval, tf32)
    # KTO's KL term pairs each row with its neighbours in a fixed order: TRL requires a sequential
    # sampler (the rows were shuffled once while preparing them).
    kwargs["train_sampling_strategy"] = "sequential"
    return KTOConfig(**kwargs, precompute_ref_log_probs=r.precompute_ref_log_probs,
                     **_set(beta=r.beta, desirable_weight=r.kto_desirable_weight,
                            undesirable_weight=r.kto_undesirable_weight))


def to_orpo_config(cfg: Config, precision: Precision, has_eval: bool, tf32=None):
    from trl.experimental.orpo import ORPOConfig

    r = cfg.rl
    # ORPO's lambda (the odds-ratio weight) is TRL's `beta`; Axolotl calls it orpo_alpha
    return ORPOConfig(**_common(cfg, precision, has_eval, tf32),
                      **_set(beta=r.orpo_alpha or r.beta, max_completion_length=_completion_length(cfg)))


def to_simpo_config(cfg: Config, precision: Precision, has_eval: bool, tf32=None):
    from trl.experimental.cpo import CPOConfig

    r = cfg.rl
    return CPOConfig(**_common(cfg, precision, has_eval, tf32), loss_type="simpo",
                     **_set(beta=r.beta, simpo_gamma=r.simpo_gamma, cpo_alpha=r.cpo_alpha,
                            max_completion_length=_completion_length(cfg)))


def to_reward_config(cfg: Config, precision: Precision, has_eval: bool, tf32=None):
    from trl import RewardConfig

    return RewardConfig(**_common(cfg, precision, has_eval, tf32),
                        **_set(center_rewards_coefficient=cfg.rl.center_rewards_coefficient))


def _completion_length(cfg: Config) -> int | None:
    return cfg.rl.trl.max_completion_length if cfg.rl.trl else None


def to_grpo_config(cfg: Config, precision: Precision, has_eval: bool, tf32=None):
    from trl import GRPOConfig

    from axo.config.rl import TRLOptions

    o = cfg.rl.trl or TRLOptions()
    kwargs = training_kwargs(cfg, precision, has_eval, tf32)
    if cfg.method.name == "ebft":  # its two reward functions, weighted by the ebft: coefficients
        e = cfg.rl.ebft_options
        o = o.model_copy(update={"reward_weights": [e.alignment_coef, -e.diversity_coef]})
    return GRPOConfig(**kwargs, use_vllm=o.use_vllm, **_set(
        beta=o.beta if o.beta is not None else cfg.rl.rl_beta, max_completion_length=o.max_completion_length,
        num_generations=o.num_generations, temperature=o.temperature, epsilon=o.epsilon, loss_type=o.loss_type,
        scale_rewards=o.scale_rewards, mask_truncated_completions=o.mask_truncated_completions,
        log_completions=o.log_completions, reward_weights=o.reward_weights, vllm_mode=o.vllm_mode,
        # the server `axo vllm-serve` started from the `vllm:` block, unless trl: names another
        vllm_server_host=o.vllm_server_host or (cfg.rl.vllm and cfg.rl.vllm.host),
        vllm_server_port=o.vllm_server_port or (cfg.rl.vllm and cfg.rl.vllm.port),
        **{key: getattr(o, key) for key in GRPO_PASSTHROUGH if key != "chat_template_kwargs"},
        # the top-level variables (the ones SFT and preference rows get), unless trl: names its own
        **{"chat_template_kwargs": o.chat_template_kwargs or cfg.data.chat_template_kwargs}))


def to_gkd_config(cfg: Config, precision: Precision, has_eval: bool, tf32=None):
    from trl.experimental.gkd import GKDConfig

    from axo.config.rl import TRLOptions

    o = cfg.rl.trl or TRLOptions()
    # the rows arrive tokenized (input_ids, labels), batched by axo's collator
    return GKDConfig(**_common(cfg, precision, has_eval, tf32), dataset_kwargs={"skip_prepare_dataset": True},
                     **_set(beta=o.beta, temperature=o.temperature, lmbda=o.lmbda, seq_kd=o.seq_kd,
                            max_new_tokens=o.max_completion_length))


# `trl:` keys that are not TRL config fields of the same name (handled by the mapping functions)
NOT_PASSED = ("reward_funcs", "use_vllm", "beta", "chat_template_kwargs", "max_completion_length")


def _trl_passthrough(cfg: Config) -> dict:
    """The `trl:` options the method reads (axo.methods) that the user set, under their own names."""
    o = cfg.rl.trl
    names = [k.removeprefix("trl.") for k in cfg.method.options if k.startswith("trl.")]
    return _set(**{name: getattr(o, name) for name in names if name not in NOT_PASSED}) if o else {}


def _beta(cfg: Config) -> float | None:
    o = cfg.rl.trl
    return o.beta if o and o.beta is not None else cfg.rl.rl_beta


def to_rloo_config(cfg: Config, precision: Precision, has_eval: bool, tf32=None):
    from trl import RLOOConfig

    o = cfg.rl.trl
    return RLOOConfig(**training_kwargs(cfg, precision, has_eval, tf32), use_vllm=o.use_vllm, **_trl_passthrough(cfg),
                      **_set(beta=_beta(cfg), max_completion_length=o.max_completion_length,
                             chat_template_kwargs=o.chat_template_kwargs or cfg.data.chat_template_kwargs))


def to_online_dpo_config(cfg: Config, precision: Precision, has_eval: bool, tf32=None):
    from trl.experimental.online_dpo import OnlineDPOConfig

    o = cfg.rl.trl
    return OnlineDPOConfig(**training_kwargs(cfg, precision, has_eval, tf32), use_vllm=o.use_vllm,
                           max_length=cfg.data.sequence_len, **_trl_passthrough(cfg),
                           **_set(beta=_beta(cfg), max_new_tokens=o.max_completion_length))
