"""How the model is trained: batches, schedule, optimizer, checkpoints."""

from typing import Literal

from pydantic import Field

from axo.config.base import Area

Scheduler = Literal[
    "linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts",
    "polynomial", "inverse_sqrt", "cosine_with_min_lr", "warmup_stable_decay",
]
# transformers optimizer names that work without extra packages (bitsandbytes ones need a GPU).
Optimizer = Literal[
    "adamw_torch", "adamw_torch_fused", "adafactor", "sgd", "adagrad", "rmsprop",
    "adamw_bnb_8bit", "adamw_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "lion_8bit",
    "lion_32bit", "paged_lion_8bit", "paged_lion_32bit",
]


class TrainingConfig(Area):
    output_dir: str = Field("./outputs", description="Where checkpoints and the final model go.")
    micro_batch_size: int = Field(1, gt=0, description="Sequences per device per forward pass.")
    gradient_accumulation_steps: int = Field(1, gt=0, description="Micro-batches per optimizer step.")
    eval_batch_size: int | None = Field(None, gt=0, description="Eval batch size (default: micro_batch_size).")
    num_epochs: float = Field(1.0, gt=0, description="Passes over the training data.")
    max_steps: int | None = Field(None, gt=0, description="Stop after this many optimizer steps.")
    learning_rate: float = Field(2e-5, gt=0, description="Peak learning rate.")
    lr_scheduler: Scheduler = Field("cosine", description="Learning-rate schedule after warmup.")
    warmup_steps: int | None = Field(None, ge=0, description="Linear warmup steps.")
    warmup_ratio: float | None = Field(None, ge=0, lt=1, description="Warmup as a fraction of all steps.")
    weight_decay: float = Field(0.0, ge=0, description="Decoupled weight decay.")
    optimizer: Optimizer = Field("adamw_torch", description="Optimizer (transformers name).")
    adam_beta1: float | None = Field(None, gt=0, lt=1, description="Adam beta1.")
    adam_beta2: float | None = Field(None, gt=0, lt=1, description="Adam beta2.")
    adam_epsilon: float | None = Field(None, gt=0, description="Adam epsilon.")
    max_grad_norm: float | None = Field(1.0, ge=0, description="Gradient clipping norm.")
    seed: int = Field(42, description="Seed for weights init, data order and dropout.")
    logging_steps: int = Field(1, gt=0, description="Log every N optimizer steps.")
    save_steps: int | None = Field(None, gt=0, description="Checkpoint every N steps (default: each epoch).")
    save_total_limit: int | None = Field(None, gt=0, description="Keep at most N checkpoints.")
    eval_steps: int | None = Field(None, gt=0, description="Evaluate every N steps (default: each epoch).")
    gradient_checkpointing: bool | Literal["offload"] = Field(
        False, description="Recompute activations to save memory; `offload` also keeps the saved ones in CPU memory."
    )
    neftune_noise_alpha: float | None = Field(None, gt=0, description="NEFTune: noise on input embeddings while training.")
    chunked_cross_entropy: bool = Field(
        False, description="Compute the loss in chunks so the full fp32 logits never exist at once (large vocabularies)."
    )
    chunked_cross_entropy_num_chunks: int = Field(8, gt=0, description="Chunks for chunked_cross_entropy.")
    use_liger_kernel: bool = Field(False, description="Liger kernels (GPU, `pip install liger-kernel`).")
    resume_from_checkpoint: str | None = Field(None, description="Checkpoint folder to resume from.")
    auto_resume_from_checkpoints: bool = Field(
        False, description="Resume from the newest checkpoint in output_dir, if any."
    )

    def check(self):
        if self.warmup_steps is not None and self.warmup_ratio is not None:
            yield ("warmup_ratio",), "set either `warmup_steps` or `warmup_ratio`, not both"
