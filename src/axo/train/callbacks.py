"""The callbacks every recipe attaches: a progress bar with one readable line per log instead of
printed dicts, and the QAT warm-up."""

from transformers.trainer_callback import PrinterCallback, ProgressCallback

from axo.config import Config

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
    if cfg.quant.qat and cfg.quant.qat.fake_quant_after_n_steps:
        from axo.model.qat import DelayFakeQuant

        trainer.add_callback(DelayFakeQuant(cfg.quant.qat.fake_quant_after_n_steps))
