"""The one place where training keys become transformers `TrainingArguments`."""

from pathlib import Path

from axo.config import Config
from axo.config.logging import LoggingConfig
from axo.model.preflight import Precision, liger_available


def to_training_args(cfg: Config, precision: Precision, has_eval: bool, tf32: bool | None = None,
                     rows_per_sequence: int = 1):
    from transformers import TrainingArguments

    return TrainingArguments(**training_kwargs(cfg, precision, has_eval, tf32, rows_per_sequence))


def liger_kernels(chosen: dict | None) -> dict | None:
    """The kernels Liger applies: with a choice, exactly those (Liger turns most on by default)."""
    from typing import get_args

    from axo.config.training import LigerKernel

    return None if chosen is None else {kernel: bool(chosen.get(kernel)) for kernel in get_args(LigerKernel)}


def training_kwargs(cfg: Config, precision: Precision, has_eval: bool, tf32: bool | None = None,
                    rows_per_sequence: int = 1) -> dict:
    """The TrainingArguments fields every axo training sets; TRL's configs extend the same class.
    `rows_per_sequence`: packs per sequence_len of a micro-batch (data/packing.py: packs_per_sequence)."""
    import torch

    t = cfg.train
    save_strategy, save_steps = _save_plan(t)
    eval_strategy, eval_steps = _eval_plan(t, has_eval)
    scheduler, scheduler_kwargs = _schedule(t)
    optional = {  # only what the user set, so transformers' defaults stay transformers'
        k: v for k, v in {
            "adam_beta1": t.adam_beta1, "adam_beta2": t.adam_beta2, "adam_epsilon": t.adam_epsilon,
            "max_grad_norm": t.max_grad_norm, "save_total_limit": t.save_total_limit, "save_steps": save_steps,
            "eval_steps": eval_steps, "metric_for_best_model": t.best_metric,
            "greater_is_better": t.greater_is_better, "optim_args": _optim_args(t.optim_args),
            "optim_target_modules": t.optim_target_modules, "torch_compile_backend": t.torch_compile_backend,
            "torch_compile_mode": t.torch_compile_mode, "gradient_checkpointing_kwargs": t.gradient_checkpointing_kwargs,
            "dataloader_num_workers": t.dataloader_num_workers, "dataloader_drop_last": t.dataloader_drop_last,
            "dataloader_prefetch_factor": t.dataloader_prefetch_factor, "torch_empty_cache_steps": t.torch_empty_cache_steps,
            "accelerator_config": t.accelerator_config, "lr_scheduler_kwargs": scheduler_kwargs,
            "hub_model_id": t.hub_model_id, "hub_strategy": t.hub_strategy, "hub_revision": t.hub_revision,
            "project": cfg.logging.trackio_project_name, "trackio_space_id": cfg.logging.trackio_space_id,
        }.items() if v is not None
    }
    return dict(
        output_dir=t.output_dir,
        per_device_train_batch_size=t.micro_batch_size * rows_per_sequence,
        # eval rows are split packs only when eval is packed; unpacked rows stay micro_batch_size per batch
        per_device_eval_batch_size=(t.eval_batch_size or t.micro_batch_size)
        * (rows_per_sequence if cfg.data.pack_eval else 1),
        gradient_accumulation_steps=t.accumulation_steps,
        num_train_epochs=t.num_epochs,
        max_steps=t.max_steps or -1,
        learning_rate=t.learning_rate,
        lr_scheduler_type=scheduler,
        # transformers reads a float below 1 as a fraction of all steps
        warmup_steps=t.warmup_ratio if t.warmup_ratio is not None else (t.warmup_steps or 0),
        weight_decay=t.weight_decay,
        optim="adamw_torch" if t.optimizer == "muon" else t.optimizer,  # muon: built by axo, passed to the Trainer
        seed=t.seed,
        data_seed=t.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        activation_checkpointing=bool(t.gradient_checkpointing),
        neftune_noise_alpha=t.neftune_noise_alpha,
        use_liger_kernel=liger_available(t.use_liger_kernel),
        liger_kernel_config=liger_kernels(t.liger_kernel_config),
        tf32=tf32,
        logging_steps=t.logging_steps,
        logging_first_step=True,
        save_strategy=save_strategy,
        eval_strategy=eval_strategy,
        load_best_model_at_end=t.load_best_model_at_end,
        report_to=cfg.logging.report_to or "none",
        run_name=cfg.logging.run_name,
        dataloader_pin_memory=torch.cuda.is_available() if t.dataloader_pin_memory is None else t.dataloader_pin_memory,
        # without it transformers does not set up torch.distributed on an accelerator-less machine,
        # and `torchrun --nproc-per-node 2` would train two unrelated copies
        use_cpu=not torch.accelerator.is_available(),
        # packs were built in order on purpose, and curriculum data trains in its order
        train_sampling_strategy="sequential" if cfg.data.sample_packing_sequentially or cfg.data.curriculum_sampling
        else "group_by_length" if t.group_by_length else "random",
        remove_unused_columns=False,  # rows hold exactly input_ids and labels
        # transformers derives packed rows' block-diagonal mask from position_ids only without a KV cache
        use_cache=False,
        # a NaN loss is logged as nan (transformers would log the mean of earlier losses, 0.0 once all are
        # NaN), so the watchdog and the reader both see it
        logging_nan_inf_filter=False,
        # optimizer + RNG state by default, so resumed runs match uninterrupted ones
        save_only_model=t.save_only_model,
        auto_find_batch_size=t.auto_find_batch_size,
        torch_compile=t.torch_compile,
        include_num_input_tokens_seen="non_padding",  # the run report plots against tokens seen
        push_to_hub=bool(t.hub_model_id),
        hub_private_repo=t.hub_private_repo,  # private unless asked: Axolotl's default, and no surprise exposure
        **_parallel_kwargs(cfg),
        **optional,
    )


def _parallel_kwargs(cfg: Config) -> dict:
    from axo.parallel.engines import to_parallel_kwargs

    kwargs = to_parallel_kwargs(cfg.parallel)
    if cfg.lora.lisa_n_layers:  # LISA's frozen layers get no gradient; DDP must expect that
        kwargs.setdefault("ddp_find_unused_parameters", True)
    return kwargs


def _save_plan(t) -> tuple[str, float | None]:
    """(save_strategy, save_steps): `saves_per_epoch` becomes a fraction of all steps, as Axolotl does."""
    every = _per_epoch(t.saves_per_epoch, t.num_epochs) or t.save_steps
    if t.save_strategy:
        return t.save_strategy, every if t.save_strategy in ("steps", "best") else None
    return ("steps", every) if every else ("epoch", None)


def _eval_plan(t, has_eval: bool) -> tuple[str, float | None]:
    if not has_eval:
        return "no", None
    every = _per_epoch(t.evals_per_epoch, t.num_epochs) or t.eval_steps
    if t.eval_strategy:
        return t.eval_strategy, every if t.eval_strategy == "steps" else None
    return ("steps", every) if every else ("epoch", None)


def _per_epoch(times: int | None, epochs: float) -> float | None:
    """N times per epoch as a fraction of the run; None when it would be once per epoch or less."""
    if not times:
        return None
    fraction = 1.0 / (times * epochs)
    return fraction if fraction < 1 else None


def _schedule(t) -> tuple[str, dict | None]:
    kwargs = dict(t.lr_scheduler_kwargs or {})
    if t.cosine_min_lr_ratio is not None:
        kwargs["min_lr_rate"] = t.cosine_min_lr_ratio
        return "cosine_with_min_lr", kwargs
    return t.lr_scheduler, kwargs or None


def _optim_args(value) -> str | None:
    """transformers reads optimizer arguments as `key=value,key=value`."""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return value


def to_tracker_env(lg: LoggingConfig, output_dir: str, environ: dict) -> dict[str, str]:
    """Tracker settings as the environment variables transformers' tracker callbacks (and the
    trackers' own init) read."""
    uri = lg.mlflow_tracking_uri
    if lg.use_mlflow and uri is None and not environ.get("MLFLOW_TRACKING_URI"):
        uri = (Path(output_dir).resolve() / "mlruns").as_uri()  # a local store, next to the run
    env = {
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_EXPERIMENT_NAME": lg.mlflow_experiment_name,
        # MLflow 3 refuses file stores unless asked; a local folder is what a laptop user wants.
        "MLFLOW_ALLOW_FILE_STORE": "true" if uri and _is_local_path(uri) else None,
        "WANDB_PROJECT": lg.wandb_project,
        "WANDB_ENTITY": lg.wandb_entity,
        "WANDB_MODE": lg.wandb_mode,
        "WANDB_RUN_ID": lg.wandb_run_id,
        "WANDB_RESUME": "allow" if lg.wandb_run_id else None,
        "WANDB_WATCH": _env_flag(lg.wandb_watch),
        "WANDB_LOG_MODEL": _env_flag(lg.wandb_log_model),
        "HF_MLFLOW_LOG_ARTIFACTS": _env_flag(lg.hf_mlflow_log_artifacts),
        "SWANLAB_PROJECT": lg.swanlab_project, "SWANLAB_MODE": lg.swanlab_mode, "SWANLAB_WORKSPACE": lg.swanlab_workspace,
        "SWANLAB_API_KEY": lg.swanlab_api_key, "SWANLAB_LOG_MODEL": _env_flag(lg.swanlab_log_model),
        # swanlab.init reads these where transformers' callback passes no argument
        "SWANLAB_DESCRIPTION": lg.swanlab_description, "SWANLAB_WEB_HOST": lg.swanlab_web_host,
        "SWANLAB_API_HOST": lg.swanlab_api_host,
        "COMET_API_KEY": lg.comet_api_key, "COMET_WORKSPACE": lg.comet_workspace,
        "COMET_PROJECT_NAME": lg.comet_project_name, "COMET_EXPERIMENT_KEY": lg.comet_experiment_key,
        "COMET_MODE": lg.comet_mode, "COMET_START_ONLINE": _env_flag(lg.comet_online),
    }
    return {k: v for k, v in env.items() if v is not None}


def _env_flag(value) -> str | None:
    if value is None:
        return None
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _is_local_path(uri: str) -> bool:
    return uri.startswith("file:") or "://" not in uri
