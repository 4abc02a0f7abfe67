"""What a finished run leaves in output_dir besides the model: the resolved config and a summary."""

import json
import logging
from pathlib import Path

import yaml

from axo.config import Config

log = logging.getLogger("axo")
CONFIG_FILE = "axo_config.yml"


def save_run(trainer, cfg: Config, summary: dict) -> dict:
    """The model or adapter with its tokenizer/processor (plain transformers / peft load them), the
    resolved config, run_summary.json and, with `qat:` or `quantization:`, the quantized copy."""
    if cfg.quant.qat:
        from axo.model.qat import finish_qat

        finish_qat(trainer.model)
    if getattr(trainer, "is_fsdp_enabled", False):
        summary = {**summary, **_fsdp_save(trainer, cfg)}
    else:
        trainer.save_model(cfg.train.output_dir)
    if not trainer.is_world_process_zero():
        return summary
    save_config(cfg, cfg.train.output_dir)
    log.info("Saved the %s to %s", "adapter" if cfg.lora.adapter else "model", cfg.train.output_dir)
    if cfg.quant.export_scheme:
        from axo.export.quantize import quantize_model

        summary = {**summary, "quantized": str(quantize_model(cfg))}
    Path(cfg.train.output_dir, "run_summary.json").write_text(json.dumps(summary, indent=2))
    return summary


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
