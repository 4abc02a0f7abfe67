"""How the model is trained: batches, schedule, optimizer, checkpoints."""

from pathlib import Path
from typing import Literal

from pydantic import Field

from axo.config.base import Area

Scheduler = Literal[
    "linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts",
    "polynomial", "inverse_sqrt", "cosine_with_min_lr", "warmup_stable_decay",
]
# transformers' optimizer names (tests check they match transformers' own list); those that need a
# package axo does not install are named at preflight.
Optimizer = Literal[
    "adamw_torch", "adamw_torch_fused", "adafactor", "sgd", "adagrad", "rmsprop", "adamw_bnb_8bit", "adamw_8bit",
    "paged_adamw_8bit", "paged_adamw_32bit", "lion_8bit", "lion_32bit", "paged_lion_8bit", "paged_lion_32bit",
    "adamw_torch_8bit", "adamw_torch_4bit", "adamw_anyprecision", "ademamix", "ademamix_8bit", "paged_ademamix_8bit",
    "paged_ademamix_32bit", "rmsprop_bnb", "rmsprop_bnb_8bit", "rmsprop_bnb_32bit", "galore_adamw",
    "galore_adamw_8bit", "galore_adafactor", "galore_adamw_layerwise", "galore_adamw_8bit_layerwise",
    "galore_adafactor_layerwise", "apollo_adamw", "apollo_adamw_layerwise", "lomo", "adalomo", "grokadamw",
    "schedule_free_adamw", "schedule_free_radam", "schedule_free_sgd", "stable_adamw",
    "muon",  # axo's own (train/optimizers.py): torch's Muon on weight matrices, AdamW on the rest
]
Strategy = Literal["no", "steps", "epoch"]
LigerKernel = Literal["rope", "rms_norm", "layer_norm", "swiglu", "geglu", "cross_entropy", "fused_linear_cross_entropy"]
GenerationMetric = Literal["sacrebleu", "chrf", "ter", "exact_match", "perplexity", "comet"]


class TrainingConfig(Area):
    output_dir: str = Field("./outputs", description="Where checkpoints and the final model go.")
    micro_batch_size: int = Field(1, gt=0, description="Sequences per device per forward pass.")
    gradient_accumulation_steps: int = Field(1, gt=0, description="Micro-batches per optimizer step.")
    eval_batch_size: int | None = Field(None, gt=0, description="Eval batch size (default: micro_batch_size).")
    num_epochs: float = Field(1.0, gt=0, description="Passes over the training data.")
    max_steps: int | None = Field(None, gt=0, description="Stop after this many optimizer steps.")
    learning_rate: float = Field(2e-5, gt=0, description="Peak learning rate.")
    lr_scheduler: Scheduler = Field("cosine", description="Learning-rate schedule after warmup.")
    warmup_steps: int | float | None = Field(
        None, ge=0, description="Linear warmup steps; a number below 1 is a fraction of all steps.")
    warmup_ratio: float | None = Field(None, ge=0, lt=1, description="Warmup as a fraction of all steps.")
    weight_decay: float = Field(0.0, ge=0, description="Decoupled weight decay.")
    optimizer: Optimizer = Field("adamw_torch", description="Optimizer (transformers name).")
    adam_beta1: float | None = Field(None, gt=0, lt=1, description="Adam beta1.")
    adam_beta2: float | None = Field(None, gt=0, lt=1, description="Adam beta2.")
    adam_epsilon: float | None = Field(None, gt=0, description="Adam epsilon.")
    max_grad_norm: float | None = Field(1.0, ge=0, description="Gradient clipping norm.")
    seed: int = Field(42, description="Seed for weights init, data order and dropout.")
    logging_steps: int | float = Field(1, gt=0, description="Log every N optimizer steps (below 1: that share of "
                                       "the run's steps, as transformers reads it).")
    save_steps: int | float | None = Field(
        None, gt=0, description="Checkpoint every N steps (a number below 1: a fraction of all steps).")
    saves_per_epoch: int | None = Field(None, ge=0, description="Checkpoints per epoch (instead of save_steps).")
    save_strategy: Literal["no", "steps", "epoch", "best"] | None = Field(
        None, description="When to checkpoint: no, steps, epoch, or best (when metric_for_best_model improves). "
        "Default: steps with save_steps / saves_per_epoch, else each epoch.")
    save_total_limit: int | None = Field(None, gt=0, description="Keep at most N checkpoints.")
    save_only_model: bool = Field(
        False, description="Checkpoints hold only the model: smaller, but a resumed run restarts the optimizer.")
    save_first_step: bool = Field(False, description="Also checkpoint after the first step (checks saving early).")
    eval_steps: int | float | None = Field(
        None, gt=0, description="Evaluate every N steps (a number below 1: a fraction of all steps).")
    evals_per_epoch: int | None = Field(None, ge=0, description="Evaluations per epoch (instead of eval_steps).")
    eval_strategy: Strategy | None = Field(
        None, description="When to evaluate: no, steps, epoch. Default: steps with eval_steps / evals_per_epoch, "
        "else each epoch (when there is eval data).")
    metric_for_best_model: str | None = Field(None, description="Metric that decides the best checkpoint, e.g. "
                                              "eval_loss.")
    greater_is_better: bool | None = Field(None, description="Whether a larger metric_for_best_model is better.")
    load_best_model_at_end: bool = Field(False, description="Load the best checkpoint at the end (needs eval).")
    early_stopping_patience: int | None = Field(
        None, gt=0, description="Stop after this many evaluations without improvement of metric_for_best_model "
        "(default: eval_loss).")
    lm_eval_tasks: list[str] = Field(
        [], description="lm-evaluation-harness tasks scored after training (`axo lm-eval`): task names, or paths "
        "of task YAML files (a local task, e.g. examples/lm_eval/sort_digits.yaml).")
    lm_eval_batch_size: int | None = Field(8, gt=0, description="lm-eval: rows per forward pass.")
    lm_eval_post_train: bool = Field(
        True, description="Score `lm_eval_tasks` when training ends (else only with `axo lm-eval`).")
    lm_eval_model: str | None = Field(
        None, description="lm-eval: the model to score (default: the trained one in output_dir).")
    do_causal_lm_eval: bool = Field(
        False, description="At each eval, greedy-generate the first answer of every eval row and score it against "
        "the row's own answer (eval_causal_lm_metrics); logged like eval_loss.")
    eval_causal_lm_metrics: list[GenerationMetric] = Field(
        ["sacrebleu", "chrf", "ter", "exact_match"], description="Scores of generated answers: sacrebleu, chrf, ter "
        "(the sacrebleu package), exact_match (the answer's tokens, end token included), perplexity (of the eval "
        "answers: exp(eval_loss)).")
    eval_max_new_tokens: int = Field(128, gt=0, description="Longest generated answer at eval.")
    eval_table_size: int = Field(
        0, ge=0, description="Eval rows whose prompt, expected and generated answer are written at each eval to "
        "output_dir/eval_samples/step-N.jsonl (and shown to W&B as a table).")
    loss_watchdog_threshold: float | None = Field(
        None, gt=0, description="Stop training when the loss stays above this (see loss_watchdog_patience).")
    loss_watchdog_patience: int | None = Field(
        None, gt=0, description="Logged losses in a row above loss_watchdog_threshold that stop training (3).")
    batch_size: int | None = Field(
        None, gt=0, description="Sequences per optimizer step on each process; sets gradient_accumulation_steps "
        "to batch_size / micro_batch_size.")
    group_by_length: bool = Field(False, description="Batch rows of similar length together (less padding).")
    cosine_min_lr_ratio: float | None = Field(
        None, ge=0, le=1, description="Cosine schedule down to this fraction of the peak learning rate.")
    cosine_constant_lr_ratio: float | None = Field(
        None, gt=0, le=1, description="Cosine decay to cosine_min_lr_ratio over this share of the steps, then "
        "constant at that floor.")
    lr_quadratic_warmup: bool = Field(False, description="Warmup rises quadratically instead of linearly (cosine).")
    lr_scheduler_kwargs: dict | None = Field(None, description="Extra arguments of the learning-rate schedule.")
    optim_args: str | dict | None = Field(None, description="Extra optimizer arguments (transformers' optim_args).")
    optim_target_modules: str | list[str] | None = Field(
        None, description="Modules GaLore / APOLLO optimizers project, e.g. [attn, mlp].")
    torch_compile: bool = Field(False, description="Compile the model with torch.compile (runs on CPU too).")
    torch_compile_backend: str | None = Field(None, description="torch.compile backend, e.g. inductor.")
    torch_compile_mode: str | None = Field(None, description="torch.compile mode, e.g. max-autotune.")
    gradient_checkpointing_kwargs: dict | None = Field(
        None, description="Options of gradient checkpointing, e.g. {use_reentrant: false}.")
    dataloader_num_workers: int | None = Field(None, ge=0, description="Processes that load batches.")
    dataloader_pin_memory: bool | None = Field(None, description="Pin batches in memory (default: on a GPU).")
    dataloader_drop_last: bool | None = Field(None, description="Drop the last incomplete batch of an epoch.")
    dataloader_prefetch_factor: int | None = Field(None, gt=0, description="Batches each worker loads ahead.")
    auto_find_batch_size: bool = Field(False, description="Halve the batch on out-of-memory until it fits.")
    torch_empty_cache_steps: int | None = Field(None, gt=0, description="Empty the accelerator cache every N steps.")
    accelerator_config: dict | None = Field(None, description="accelerate's options (transformers' accelerator_config).")
    include_tokens_per_second: bool = Field(
        False, description="Accepted for Axolotl configs: axo always counts the tokens seen (without padding); the "
        "run report plots the curves against them, and tokens/s.")
    hub_model_id: str | None = Field(None, description="Push the trained model to this hub repo (org/name).")
    hub_strategy: Literal["end", "every_save", "checkpoint", "all_checkpoints"] | None = Field(
        None, description="What is pushed when: end (default), every_save, checkpoint, all_checkpoints.")
    hub_revision: str | None = Field(None, description="Hub branch to push to.")
    hub_private_repo: bool = Field(
        True, description="Create the hub repo private (as Axolotl does); false: public. An existing repo keeps "
        "its visibility.")
    gradient_checkpointing: bool | Literal["offload"] = Field(
        False, description="Recompute activations to save memory; `offload` also keeps the saved ones in CPU memory."
    )
    neftune_noise_alpha: float | None = Field(None, gt=0, description="NEFTune: noise on input embeddings while training.")
    chunked_cross_entropy: bool = Field(
        False, description="Compute the loss in chunks so the full fp32 logits never exist at once (large vocabularies)."
    )
    chunked_cross_entropy_num_chunks: int = Field(8, gt=0, description="Chunks for chunked_cross_entropy.")
    use_liger_kernel: bool = Field(False, description="Liger kernels (GPU, `pip install liger-kernel`).")
    liger_kernel_config: dict[LigerKernel, bool] | None = Field(
        None, description="With use_liger_kernel: only these Liger kernels (the others off), e.g. {rope: true, "
        "rms_norm: true}; unset: Liger's defaults. Axolotl's liger_* keys set it.")
    resume_from_checkpoint: str | None = Field(None, description="Checkpoint folder to resume from.")
    overwrite_output_dir: bool = Field(
        False, description="Start afresh: remove the earlier run's checkpoints, model and records from output_dir.")
    auto_resume_from_checkpoints: bool = Field(
        False, description="Resume from the newest checkpoint in output_dir, if any."
    )

    def check(self):
        if self.logging_steps > 1 and self.logging_steps != int(self.logging_steps):
            yield ("logging_steps",), "above 1 it counts steps: a whole number (below 1 it is a share of the run)"
        if self.warmup_steps is not None and self.warmup_ratio is not None:
            yield ("warmup_ratio",), "set either `warmup_steps` or `warmup_ratio`, not both"
        for per_epoch, steps in (("saves_per_epoch", "save_steps"), ("evals_per_epoch", "eval_steps")):
            if getattr(self, per_epoch) and getattr(self, steps):
                yield (per_epoch,), f"set either `{per_epoch}` or `{steps}`, not both"
        for key in ("save_steps", "eval_steps", "warmup_steps"):
            value = getattr(self, key)
            if isinstance(value, float) and value >= 1 and not value.is_integer():
                yield (key,), "a number of steps is whole; a fraction of the run is below 1"
        if self.batch_size and self.batch_size % self.micro_batch_size:
            yield ("batch_size",), f"must be a multiple of micro_batch_size ({self.micro_batch_size})"
        elif self.batch_size and "gradient_accumulation_steps" in self.model_fields_set \
                and self.batch_size != self.micro_batch_size * self.gradient_accumulation_steps:
            yield ("batch_size",), ("is micro_batch_size x gradient_accumulation_steps; the three disagree, "
                                    "keep two")
        if self.save_strategy == "best" and not self.metric_for_best_model:
            yield ("save_strategy",), "`best` needs `metric_for_best_model` (e.g. eval_loss)"
        if "comet" in self.eval_causal_lm_metrics and self.do_causal_lm_eval:
            yield ("eval_causal_lm_metrics",), ("`comet` scores with a neural model that would be downloaded during "
                                                "training; axo downloads nothing mid-run. Remove it (sacrebleu, chrf, "
                                                "ter, exact_match, perplexity remain)")
        for i, task in enumerate(self.lm_eval_tasks):
            if task.endswith((".yaml", ".yml")) and not Path(task).is_file():
                yield ("lm_eval_tasks", i), (f"the task file {task!r} does not exist (paths are read from where axo "
                                             "runs). Fix: the path of a task YAML, or a harness task name")
        if self.eval_table_size and not self.do_causal_lm_eval:
            yield ("eval_table_size",), "shows generated answers: set `do_causal_lm_eval: true`"
        if self.loss_watchdog_patience and self.loss_watchdog_threshold is None:
            yield ("loss_watchdog_patience",), "needs `loss_watchdog_threshold`"
        for key in ("cosine_min_lr_ratio", "cosine_constant_lr_ratio", "lr_quadratic_warmup"):
            if getattr(self, key) not in (None, False) and self.lr_scheduler not in ("cosine", "cosine_with_min_lr"):
                yield (key,), f"shapes a cosine schedule; `lr_scheduler` is {self.lr_scheduler}"
        if self.cosine_constant_lr_ratio is not None and self.cosine_min_lr_ratio is None:
            yield ("cosine_constant_lr_ratio",), "needs `cosine_min_lr_ratio`, the floor it holds after the decay"
        if self.cosine_constant_lr_ratio is not None and self.lr_quadratic_warmup:
            yield ("lr_quadratic_warmup",), "and `cosine_constant_lr_ratio` are two schedules; keep one"

    @property
    def best_metric(self) -> str | None:
        """metric_for_best_model; early stopping without one watches eval_loss, as transformers does."""
        return self.metric_for_best_model or ("eval_loss" if self.early_stopping_patience else None)

    @property
    def accumulation_steps(self) -> int:
        """gradient_accumulation_steps, or batch_size / micro_batch_size when batch_size is given."""
        if self.batch_size:
            return self.batch_size // self.micro_batch_size
        return self.gradient_accumulation_steps
