"""Process reward models: a token classifier that scores each reasoning step, trained with the
transformers Trainer (TRL 1.16 has no PRM trainer). The recipe, top to bottom."""

import logging

import numpy as np

from axo.config import Config

log = logging.getLogger("axo")


def train(cfg: Config, callbacks: list | None = None) -> dict:
    from transformers import DataCollatorForTokenClassification, Trainer

    from axo.data.stepwise import prepare_steps
    from axo.model.build import trainable_model
    from axo.model.tokenizer import load_tokenizer
    from axo.train.args import to_training_args
    from axo.train.outputs import save_run
    from axo.train.setup import prepare_trainer, start_run

    # Preflight
    run = start_run(cfg)

    # Data: steps tokenized, the separator after each step labelled good (1) or bad (0).
    tokenizer = load_tokenizer(cfg)
    train_rows, eval_rows = prepare_steps(cfg, tokenizer)

    # Model: a token-classification head (num_labels 2), with or without an adapter.
    model = trainable_model(cfg, run.precision, tokenizer)

    trainer = Trainer(
        model=model,
        args=to_training_args(cfg, run.precision, has_eval=eval_rows is not None, tf32=run.tf32),
        train_dataset=train_rows,
        eval_dataset=eval_rows,
        data_collator=DataCollatorForTokenClassification(tokenizer),
        processing_class=tokenizer,
        compute_metrics=step_accuracy,
        callbacks=callbacks,
    )
    prepare_trainer(trainer, cfg)
    result = trainer.train(resume_from_checkpoint=run.resume)
    return save_run(trainer, cfg, {**result.metrics, "precision": run.precision, "method": "process_reward"})


def step_accuracy(prediction) -> dict:
    """Share of scored steps whose predicted label is right."""
    logits, labels = prediction.predictions, prediction.label_ids
    scored = labels != -100
    return {"step_accuracy": float((logits.argmax(-1)[scored] == labels[scored]).mean()) if scored.any() else np.nan}
