"""`use_ray: true`: the training runs as a Ray Train job, one worker per process. Ray starts the
workers and their torch.distributed group (gloo on CPU, NCCL on GPU); each worker then runs the
same recipe `axo train` runs, and the Trainer joins the group Ray made."""

import logging
import os
from pathlib import Path

from axo.config import Config
from axo.errors import AxoError

log = logging.getLogger("axo")


def train_on_ray(cfg: Config, config_path: str, overrides: list[str]) -> None:
    try:
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
    except ImportError:
        raise AxoError("`use_ray: true` needs Ray Train. Fix: `pip install 'ray[train]'`.") from None
    import torch

    p = cfg.parallel
    resources = dict(p.resources_per_worker or {})
    use_gpu = resources.pop("GPU", 0) > 0 or (not p.resources_per_worker and torch.cuda.is_available())
    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), log_to_driver=True)  # a local cluster when none is given
    trainer = TorchTrainer(
        _worker,
        train_loop_config={"config": str(Path(config_path).resolve()), "overrides": overrides, "cwd": os.getcwd()},
        scaling_config=ScalingConfig(num_workers=p.ray_num_workers, use_gpu=use_gpu,
                                     resources_per_worker=resources or None),
        run_config=RunConfig(name=p.ray_run_name or "axo", storage_path=str(Path(cfg.train.output_dir, "ray").resolve())),
    )
    log.info("Ray Train: %d workers%s", p.ray_num_workers, " with a GPU each" if use_gpu else "")
    result = trainer.fit()
    if result.error:
        raise AxoError(f"the Ray Train job failed: {result.error}")


def _worker(loop_config: dict) -> None:
    """One Ray worker: the config's relative paths mean what they meant where `axo train` ran."""
    os.chdir(loop_config["cwd"])
    from axo.config import load
    from axo.logs import setup_logging
    from axo.train.recipes import run

    setup_logging()
    run(load(loop_config["config"], loop_config["overrides"]))
