"""The callbacks every recipe attaches: a progress bar with one readable line per log instead of
printed dicts, the QAT warm-up, the loss watchdog, early stopping and the first-step checkpoint."""

import logging

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from axo.config import Config

log = logging.getLogger("axo")

SHOWN = ("loss", "eval_loss", "learning_rate", "grad_norm", "epoch")


def format_logs(logs: dict, step: int, max_steps: int) -> str:
    parts = [f"step {step}/{max_steps}"]
    for key in SHOWN:
        if key in logs:
            value = logs[key]
            name = "lr" if key == "learning_rate" else key
            parts.append(f"{name} {value:.3g}" if key == "learning_rate" else f"{name} {value:.4f}")
    parts += [f"{k} {v:.4g}" for k, v in logs.items()
              if k not in SHOWN and isinstance(v, float) and not k.endswith("_per_second")]
    return " | ".join(parts)


class LineProgress(ProgressCallback):
    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs:
            self.training_bar.write(format_logs(logs, state.global_step, state.max_steps))


def attach_callbacks(trainer, cfg: Config) -> None:
    """Swap the Trainer's dict-printing progress for LineProgress (TRL trainers add a printer too);
    hold fake quantization back for `qat.fake_quant_after_n_steps`."""
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(LineProgress)
    t = cfg.train
    if t.loss_watchdog_threshold is not None:
        trainer.add_callback(LossWatchdog(t.loss_watchdog_threshold, t.loss_watchdog_patience or 3))
    if t.early_stopping_patience:
        from transformers import EarlyStoppingCallback

        trainer.add_callback(EarlyStoppingCallback(early_stopping_patience=t.early_stopping_patience))
    if t.save_first_step:
        trainer.add_callback(SaveFirstStep())
    if cfg.quant.qat and cfg.quant.qat.fake_quant_after_n_steps:
        from axo.model.qat import DelayFakeQuant

        trainer.add_callback(DelayFakeQuant(cfg.quant.qat.fake_quant_after_n_steps))


class LossWatchdog(TrainerCallback):
    """`loss_watchdog_threshold`: stop training when `patience` logged losses in a row are above it."""

    def __init__(self, threshold: float, patience: int):
        self.threshold, self.patience, self.above = threshold, patience, 0

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return
        self.above = self.above + 1 if logs["loss"] > self.threshold else 0
        if self.above >= self.patience:
            log.warning("Stopping at step %d: the loss stayed above loss_watchdog_threshold=%g for %d logged steps",
                        state.global_step, self.threshold, self.above)
            control.should_training_stop = True


class SaveFirstStep(TrainerCallback):
    """`save_first_step`: a checkpoint after step 1, so a broken save shows at once, not hours later."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 1:
            control.should_save = True
