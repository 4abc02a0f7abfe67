"""What a finished run leaves in output_dir, one step each, called in this order by every recipe:
nothing but the reason when the watchdog stopped it, plain layers again after QAT, the model or adapter with its tokenizer (plain transformers / peft
load them), the quantized copy, and the run's files (the resolved config and run_summary.json)."""

import json
import logging
from pathlib import Path

import yaml

from axo.config import Config

log = logging.getLogger("axo")
CONFIG_FILE = "axo_config.yml"


def stop_if_failed(trainer, cfg: Config, summary: dict) -> None:
    """A run the watchdog stopped ends as failed: its run_summary.json says why, nothing is saved
    over the last checkpoint, and the command exits non-zero with the fix."""
    from axo.errors import AxoError
    from axo.train.callbacks import SaveOnSignal, Watchdog
    from axo.train.checkpoints import checkpoints

    [watchdog] = [c for c in trainer.callback_handler.callbacks if isinstance(c, Watchdog)]
    [signals] = [c for c in trainer.callback_handler.callbacks if isinstance(c, SaveOnSignal)]
    if signals.signal is not None:
        _interrupted(trainer, cfg, summary, signals.signal)
    if watchdog.failure is None:
        return
    if trainer.is_world_process_zero():
        Path(cfg.train.output_dir).mkdir(parents=True, exist_ok=True)
        Path(cfg.train.output_dir, "run_summary.json").write_text(
            json.dumps({**summary, "status": "failed", "reason": watchdog.failure}, indent=2))
        _write_report(trainer, cfg)  # the curves show where it went wrong
    written = checkpoints(Path(cfg.train.output_dir))  # newest first
    last = f"the last good checkpoint is {written[0]}" if written else "no checkpoint was written"
    raise AxoError(f"training failed: {watchdog.failure}; {last}, and no model was saved. Fix: a lower "
                   "`learning_rate` (or a warm-up, or `max_grad_norm: 1.0`), then resume or start again.")


def _interrupted(trainer, cfg: Config, summary: dict, signum: int) -> None:
    import signal

    from axo.errors import Interrupted

    name, step = signal.Signals(signum).name, trainer.state.global_step
    checkpoint = Path(cfg.train.output_dir) / f"checkpoint-{step}"
    if trainer.is_world_process_zero():
        Path(cfg.train.output_dir, "run_summary.json").write_text(json.dumps(
            {**summary, "status": "interrupted", "reason": f"{name} at step {step}", "checkpoint": str(checkpoint)},
            indent=2))
        _write_report(trainer, cfg)
    raise Interrupted(f"stopped by {name} after step {step}; saved {checkpoint}. Resume with "
                      "`auto_resume_from_checkpoints: true` (or `--resume_from_checkpoint "
                      f"{checkpoint}`): the run continues exactly where it stopped.", signum)


def finish_qat(trainer, cfg: Config) -> None:
    if cfg.quant.qat:
        from axo.model.qat import finish_qat as restore

        restore(trainer.model)


def save_model(trainer, cfg: Config) -> dict:
    """The trained model (or adapter) and its tokenizer/processor in output_dir; under FSDP, the
    shards gathered as `final_state_dict_type` says. Returns what the run summary records of it."""
    if getattr(trainer, "is_fsdp_enabled", False):
        return _fsdp_save(trainer, cfg)
    trainer.save_model(cfg.train.output_dir)
    if trainer.is_world_process_zero():
        log.info("Saved the %s to %s", "adapter" if cfg.lora.adapter else "model", cfg.train.output_dir)
    return {}


def export_quantized(trainer, cfg: Config) -> dict:
    """With `qat:` or `quantization:`, the quantized copy in output_dir/quantized."""
    if not trainer.is_world_process_zero():
        return {}
    if cfg.quant.qat and not cfg.quant.export_scheme:
        fmt = cfg.quant.qat.weight_dtype
        log.info("QAT: output_dir holds the full-precision weights trained for %s; axo writes no quantized copy "
                 "of %s (torchao stores it only for FP4 GPUs' kernels, or not at all); quantize with the "
                 "serving stack's tool (e.g. llm-compressor, ModelOpt)", fmt, fmt)
    if not cfg.quant.export_scheme:
        return {}
    from axo.export.quantize import quantize_model

    return {"quantized": str(quantize_model(cfg))}


def train_and_save(trainer, cfg: Config, run, data_stats: list, **extra) -> dict:
    """What every recipe ends with: training (resumed where the run says), then the outputs: plain
    layers after QAT, the model, its quantized copy, the run's files. `extra`: more for the summary."""
    from axo.train.checkpoints import disk_full_reported

    with disk_full_reported(cfg.train.output_dir):
        result = trainer.train(resume_from_checkpoint=run.resume)
    summary = {**result.metrics, **extra, "precision": run.precision, "method": cfg.method.name, "data": data_stats}
    stop_if_failed(trainer, cfg, summary)
    finish_qat(trainer, cfg)
    summary |= save_model(trainer, cfg)
    summary |= export_quantized(trainer, cfg)
    return write_run_files(trainer, cfg, summary)


def write_run_files(trainer, cfg: Config, summary: dict) -> dict:
    from axo.train.callbacks import MemoryRecord

    callbacks = trainer.callback_handler.callbacks
    record = next((c for c in callbacks if isinstance(c, MemoryRecord)), None)
    if record is not None:
        summary["memory"] = record.summary()
    if trainer.is_world_process_zero() and cfg.train.lm_eval_tasks and cfg.train.lm_eval_post_train:
        from axo.infer.benchmark import SUMMARY_KEY, benchmark, table

        try:  # the model just saved to output_dir
            summary[SUMMARY_KEY] = benchmark(cfg)
            log.info("lm-eval scores:\n%s", table(summary[SUMMARY_KEY]))
        except Exception as err:  # the trained model is saved: a benchmark failure must not lose the run's record
            log.error("lm-eval failed after training (%s: %s); the model is saved. Score it with `axo lm-eval "
                      "CONFIG` once fixed.", type(err).__name__, str(err).splitlines()[0] if str(err) else "")
    if trainer.is_world_process_zero():
        save_config(cfg, cfg.train.output_dir)
        Path(cfg.train.output_dir, "run_summary.json").write_text(json.dumps(summary, indent=2))
        _write_report(trainer, cfg)
    return summary


def _write_report(trainer, cfg: Config) -> None:
    from axo.train.callbacks import RunLog

    report = next((c for c in trainer.callback_handler.callbacks if isinstance(c, RunLog)), None)
    if report is not None and report.write(cfg.train.output_dir):
        log.info("Run report: %s", Path(cfg.train.output_dir, "report.html"))


def _fsdp_save(trainer, cfg: Config) -> dict:
    from axo.parallel.engines import save_sharded_model, sharded_share

    sharded, total = sharded_share(trainer.model)
    log.info("FSDP2: %d of %d parameter tensors sharded across %d processes", sharded, total,
             trainer.args.world_size)
    final = cfg.parallel.fsdp_options.final_state_dict_type
    save_sharded_model(trainer, final, cfg.train.output_dir)
    return {"fsdp_sharded_parameters": sharded, "parameters": total, "final_state_dict_type": final}


def save_config(cfg: Config, folder: str) -> None:
    Path(folder).mkdir(parents=True, exist_ok=True)
    Path(folder, CONFIG_FILE).write_text(yaml.safe_dump(cfg.to_flat(), sort_keys=False))
