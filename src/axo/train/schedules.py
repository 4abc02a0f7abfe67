"""Axolotl's two cosine schedules transformers does not have: warmup that rises quadratically
(`lr_quadratic_warmup`), and cosine decay to a floor reached after a share of the steps, then held
(`cosine_constant_lr_ratio` with `cosine_min_lr_ratio`). They are factors of the peak learning rate
per step, installed by replacing the trainer instance's `create_scheduler` (listed in
model/patches.py); checkpoints save and resume them like any LambdaLR."""

import math
from functools import partial

from axo.config.training import TrainingConfig


def quadratic_warmup_cosine(step: int, *, warmup: int, total: int, floor: float = 0.0) -> float:
    if step < warmup:
        return (step / max(1, warmup)) ** 2
    return _cosine((step - warmup) / max(1, total - warmup), floor)


def cosine_then_constant(step: int, *, warmup: int, total: int, floor: float, decay_share: float) -> float:
    """Cosine from the peak to `floor` over the first `decay_share` of all steps, then `floor`."""
    if step < warmup:
        return step / max(1, warmup)
    decay_end = int(total * decay_share)
    return _cosine((min(step, decay_end) - warmup) / max(1, decay_end - warmup), floor)


def _cosine(progress: float, floor: float) -> float:
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


def schedule_factor(t: TrainingConfig):
    """The per-step factor a config asks for, or None when transformers' own schedule does."""
    floor = t.cosine_min_lr_ratio or 0.0
    if t.cosine_constant_lr_ratio is not None:
        return partial(cosine_then_constant, floor=floor, decay_share=t.cosine_constant_lr_ratio)
    if t.lr_quadratic_warmup:
        return partial(quadratic_warmup_cosine, floor=floor)
    return None


def install_schedule(trainer, t: TrainingConfig) -> None:
    factor = schedule_factor(t)
    if factor is None:
        return
    from torch.optim.lr_scheduler import LambdaLR

    def create_scheduler(num_training_steps: int, optimizer=None):
        if trainer.lr_scheduler is None:
            warmup = trainer.args.get_warmup_steps(num_training_steps)
            trainer.lr_scheduler = LambdaLR(optimizer or trainer.optimizer,
                                            partial(factor, warmup=warmup, total=num_training_steps))
            trainer._created_lr_scheduler = True
        return trainer.lr_scheduler

    trainer.create_scheduler = create_scheduler
