"""Preference learning and reward models, trained through TRL."""

from typing import Literal

from pydantic import Field, model_validator

from axo.config.base import Area

Method = Literal["dpo", "ipo", "orpo", "kto", "simpo", "grpo"]


class TRLOptions(Area):
    """The `trl:` block."""

    beta: float | None = Field(None, ge=0, description="Strength of the preference loss, or GRPO's KL weight.")
    max_completion_length: int | None = Field(None, gt=0, description="Longest completion (ORPO, SimPO, GRPO).")
    # GRPO
    reward_funcs: list[str] | None = Field(
        None, description="GRPO: dotted paths to reward functions, f(prompts, completions, **columns) -> list[float], "
        "in a module next to the config or installed.")
    reward_weights: list[float] | None = Field(None, description="GRPO: weight of each reward function.")
    num_generations: int | None = Field(None, ge=2, description="GRPO: completions sampled per prompt.")
    temperature: float | None = Field(None, gt=0, description="GRPO: sampling temperature.")
    epsilon: float | None = Field(None, gt=0, description="GRPO: clipping range of the policy ratio.")
    loss_type: str | None = Field(None, description="GRPO: grpo, dr_grpo, dapo, bnpo... as TRL offers them.")
    scale_rewards: bool | Literal["group", "batch", "none"] | None = Field(None, description="GRPO: reward scaling.")
    mask_truncated_completions: bool | None = Field(None, description="GRPO: no loss on cut-off completions.")
    log_completions: bool | None = Field(None, description="GRPO: log sampled completions.")
    use_vllm: bool = Field(False, description="GRPO: generate with vLLM (GPU; `axo vllm-serve` for server mode).")
    vllm_mode: Literal["server", "colocate"] | None = Field(None, description="GRPO: vLLM in its own server or in-process.")
    vllm_server_host: str | None = Field(None, description="GRPO: host of `axo vllm-serve`.")
    vllm_server_port: int | None = Field(None, description="GRPO: port of `axo vllm-serve`.")

    @model_validator(mode="after")
    def _weights(self):
        if self.reward_weights and len(self.reward_weights) != len(self.reward_funcs or []):
            raise ValueError("`trl.reward_weights` needs one weight per `trl.reward_funcs` entry")
        return self


class RLConfig(Area):
    rl: Method | None = Field(None, description="Preference method: dpo, ipo, orpo, kto or simpo.")
    rl_beta: float | None = Field(None, gt=0, description="Strength of the preference loss (Axolotl also: dpo_beta).")
    trl: TRLOptions | None = Field(None, description="TRL options.")
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
    reward_model: bool = Field(False, description="Train a reward model (a sequence classifier on chosen/rejected pairs).")
    process_reward_model: bool = Field(
        False, description="Train a process reward model (a token classifier scoring each reasoning step)."
    )

    @model_validator(mode="after")
    def _one_method(self):
        if sum(map(bool, (self.rl, self.reward_model, self.process_reward_model))) > 1:
            raise ValueError("`rl`, `reward_model` and `process_reward_model` are different trainings; set one")
        return self

    @model_validator(mode="after")
    def _options_fit_the_method(self):
        """An option of another method would be silently ignored: say so instead."""
        used_by = {
            "dpo_loss_type": ("dpo", "ipo"), "dpo_label_smoothing": ("dpo", "ipo"), "orpo_alpha": ("orpo",),
            "simpo_gamma": ("simpo",), "cpo_alpha": ("simpo",), "kto_desirable_weight": ("kto",),
            "kto_undesirable_weight": ("kto",), "precompute_ref_log_probs": ("dpo", "ipo", "kto"),
        }
        stray = [k for k, methods in used_by.items() if getattr(self, k) not in (None, False) and self.rl not in methods]
        if self.trl and self.trl.max_completion_length and self.rl not in ("orpo", "simpo", "grpo"):
            stray.append("trl.max_completion_length")
        grpo_only = ("reward_funcs", "reward_weights", "num_generations", "temperature", "epsilon", "loss_type",
                     "scale_rewards", "mask_truncated_completions", "log_completions", "use_vllm", "vllm_mode")
        if self.trl and self.rl != "grpo":
            stray += [f"trl.{k}" for k in grpo_only if getattr(self.trl, k) not in (None, False)]
        if self.rl == "grpo" and not (self.trl and self.trl.reward_funcs):
            raise ValueError("`rl: grpo` needs reward functions: set `trl.reward_funcs: [my_rewards.correct]`")
        if stray:
            raise ValueError(f"{', '.join(f'`{k}`' for k in stray)} do(es) nothing with "
                             f"{f'rl: {self.rl}' if self.rl else 'no `rl` method'}; remove them or change `rl`")
        return self

    @property
    def beta(self) -> float | None:
        return (self.trl.beta if self.trl else None) or self.rl_beta
