"""What every recipe does before data and model: hardware-dependent choices, backend checks, the
checkpoint to resume from, and the trackers' environment."""

import os
from dataclasses import dataclass

from axo.config import Config


@dataclass(frozen=True)
class RunSetup:
    precision: str
    tf32: bool | None
    resume: str | None
    plan: dict | None = None  # the plan's figures, recorded next to what the run really used


def start_run(cfg: Config) -> RunSetup:
    from axo.model.preflight import check_backends, resolve_precision, resolve_tf32
    from axo.parallel.engines import check_nd_device, check_world_size, world_size
    from axo.plan import check_before_training
    from axo.train.args import to_tracker_env
    from axo.train.checkpoints import resume_checkpoint
    from axo.train.identity import check_run, write_run

    resume = None if cfg.train.overwrite_output_dir else resume_checkpoint(cfg.train)
    check_backends(cfg)
    check_world_size(cfg.parallel, world_size())
    check_nd_device(cfg.parallel, _has_accelerator())
    setup = RunSetup(resolve_precision(cfg.model), resolve_tf32(cfg.model), resume,
                     check_before_training(cfg, world_size()))
    if int(os.environ.get("RANK", "0")) == 0:  # one process checks (and, asked to, clears) output_dir
        check_run(cfg, resume)
        write_run(cfg)
    os.environ.update(to_tracker_env(cfg.logging, cfg.train.output_dir, os.environ))
    if cfg.parallel.use_fsdp:  # what `accelerate launch --use_fsdp` sets; transformers' loading reads it
        os.environ["ACCELERATE_USE_FSDP"] = "true"
    return setup


def engine_ready(args):
    """The training arguments, with torch.distributed and the engine set up from them now, before the
    model loads: DeepSpeed ZeRO-3 builds the model already partitioned, and FSDP's
    cpu_ram_efficient_loading reads the weights on local rank 0 only, both only when the engine
    exists at load time."""
    args.world_size  # noqa: B018 (reading it sets up the process group)
    return args


def _has_accelerator() -> bool:
    import torch

    return torch.accelerator.is_available()


def prepare_trainer(trainer, cfg: Config, run: RunSetup | None = None) -> None:
    """What every recipe does to its Trainer before training: axo's callbacks (with the plan to
    check against what the run uses), and FSDP made real on CPU (see shard_on_cpu)."""
    from axo.parallel.engines import shard_on_cpu
    from axo.train.callbacks import MemoryRecord, RunLog, attach_callbacks
    from axo.train.schedules import install_schedule

    attach_callbacks(trainer, cfg)
    trainer.add_callback(MemoryRecord(run.plan if run else None))
    trainer.add_callback(RunLog(trainer))
    install_schedule(trainer, cfg.train)
    if cfg.parallel.use_fsdp:
        shard_on_cpu(trainer)
        if not trainer.is_fsdp_enabled and trainer.args.world_size > 1:
            from axo.errors import AxoError

            raise AxoError("FSDP was asked for, but accelerate set up "
                           f"{trainer.accelerator.distributed_type.value}, so nothing would be sharded. Fix: remove "
                           "`fsdp_version` to train DDP, or report this with the output of `accelerate env`.")
