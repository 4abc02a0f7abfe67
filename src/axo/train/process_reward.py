"""Process reward models: a token classifier that scores each reasoning step, trained with the
transformers Trainer (TRL 1.16 has no PRM trainer). The recipe, top to bottom."""

import logging
import os

import numpy as np

from axo.config import Config

log = logging.getLogger("axo")


def train(cfg: Config, callbacks: list | None = None) -> dict:
    from transformers import DataCollatorForTokenClassification, Trainer

    from axo.data.stepwise import prepare_steps
    from axo.model.adapters import apply_adapter
    from axo.model.loader import load_model
    from axo.model.patches import apply_patches
    from axo.model.preflight import check_backends, resolve_precision, resolve_tf32
    from axo.model.tokenizer import load_tokenizer
    from axo.train.args import to_tracker_env, to_training_args
    from axo.train.callbacks import use_line_progress
    from axo.train.checkpoints import resume_checkpoint
    from axo.train.outputs import save_run

    # Preflight
    precision, tf32 = resolve_precision(cfg.model), resolve_tf32(cfg.model)
    check_backends(cfg)
    resume = resume_checkpoint(cfg.train)

    # Data: steps tokenized, the separator after each step labelled good (1) or bad (0).
    tokenizer = load_tokenizer(cfg)
    train_rows, eval_rows = prepare_steps(cfg, tokenizer)

    # Model: a token-classification head (num_labels 2), with or without an adapter.
    model = load_model(cfg, precision, tokenizer)
    apply_patches(model, cfg)
    model = apply_adapter(model, cfg)

    os.environ.update(to_tracker_env(cfg.logging, cfg.train.output_dir, os.environ))
    trainer = Trainer(
        model=model,
        args=to_training_args(cfg, precision, has_eval=eval_rows is not None, tf32=tf32),
        train_dataset=train_rows,
        eval_dataset=eval_rows,
        data_collator=DataCollatorForTokenClassification(tokenizer),
        processing_class=tokenizer,
        compute_metrics=step_accuracy,
        callbacks=callbacks,
    )
    use_line_progress(trainer)
    result = trainer.train(resume_from_checkpoint=resume)
    return save_run(trainer, cfg, {**result.metrics, "precision": precision, "method": "process_reward"})


def step_accuracy(prediction) -> dict:
    """Share of scored steps whose predicted label is right."""
    logits, labels = prediction.predictions, prediction.label_ids
    scored = labels != -100
    return {"step_accuracy": float((logits.argmax(-1)[scored] == labels[scored]).mean()) if scored.any() else np.nan}
