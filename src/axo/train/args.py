"""The one place where training keys become transformers `TrainingArguments`."""

from pathlib import Path

from axo.config import Config
from axo.config.logging import LoggingConfig
from axo.model.preflight import Precision


def to_training_args(cfg: Config, precision: Precision, has_eval: bool, tf32: bool | None = None):
    from transformers import TrainingArguments

    return TrainingArguments(**training_kwargs(cfg, precision, has_eval, tf32))


def training_kwargs(cfg: Config, precision: Precision, has_eval: bool, tf32: bool | None = None) -> dict:
    """The TrainingArguments fields every axo training sets; TRL's configs extend the same class."""
    import torch

    from axo.parallel.engines import to_parallel_kwargs

    t = cfg.train
    eval_every = "steps" if t.eval_steps else "epoch"
    optional = {  # only what the user set, so transformers' defaults stay transformers'
        k: v for k, v in {
            "adam_beta1": t.adam_beta1, "adam_beta2": t.adam_beta2, "adam_epsilon": t.adam_epsilon,
            "max_grad_norm": t.max_grad_norm, "save_total_limit": t.save_total_limit,
        }.items() if v is not None
    }
    return dict(
        output_dir=t.output_dir,
        per_device_train_batch_size=t.micro_batch_size,
        per_device_eval_batch_size=t.eval_batch_size or t.micro_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        num_train_epochs=t.num_epochs,
        max_steps=t.max_steps or -1,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler,
        # transformers reads a float below 1 as a fraction of all steps
        warmup_steps=t.warmup_ratio if t.warmup_ratio is not None else (t.warmup_steps or 0),
        weight_decay=t.weight_decay,
        optim=t.optimizer,
        seed=t.seed,
        data_seed=t.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        activation_checkpointing=bool(t.gradient_checkpointing),
        neftune_noise_alpha=t.neftune_noise_alpha,
        use_liger_kernel=t.use_liger_kernel,
        tf32=tf32,
        logging_steps=t.logging_steps,
        logging_first_step=True,
        save_strategy="steps" if t.save_steps else "epoch",
        save_steps=t.save_steps or 500,
        eval_strategy=eval_every if has_eval else "no",
        eval_steps=t.eval_steps,
        report_to=cfg.logging.report_to or "none",
        run_name=cfg.logging.wandb_name or cfg.logging.mlflow_run_name,
        dataloader_pin_memory=torch.cuda.is_available(),
        # without it transformers does not set up torch.distributed on an accelerator-less machine,
        # and `torchrun --nproc-per-node 2` would train two unrelated copies
        use_cpu=not torch.accelerator.is_available(),
        # packs were built in order on purpose; otherwise the Trainer shuffles every epoch
        train_sampling_strategy="sequential" if cfg.data.sample_packing_sequentially else "random",
        remove_unused_columns=False,  # rows hold exactly input_ids and labels
        # transformers derives packed rows' block-diagonal mask from position_ids only without a KV cache
        use_cache=False,
        save_only_model=False,  # optimizer + RNG state, so resumed runs match uninterrupted ones
        **to_parallel_kwargs(cfg.parallel),
        **optional,
    )


def to_tracker_env(lg: LoggingConfig, output_dir: str, environ: dict) -> dict[str, str]:
    """Tracker settings as the environment variables transformers' MLflow and W&B callbacks read."""
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
    }
    return {k: v for k, v in env.items() if v is not None}


def _is_local_path(uri: str) -> bool:
    return uri.startswith("file:") or "://" not in uri
