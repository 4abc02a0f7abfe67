"""Process reward models: a token classifier that scores each reasoning step, trained with the
transformers Trainer (TRL 1.16 has no PRM trainer). The recipe, top to bottom."""

import logging

import numpy as np

from axo.config import Config

log = logging.getLogger("axo")


def train(cfg: Config, callbacks: list | None = None) -> dict:
    from transformers import DataCollatorForTokenClassification, Trainer

    from axo.data.chat import load_processing
    from axo.data.prepare import prepare
    from axo.train.optimizers import custom_optimizer
    from axo.model.build import trainable_model
    from axo.train.args import to_training_args
    from axo.train.outputs import train_and_save
    from axo.train.setup import engine_ready, prepare_trainer, start_run

    # Preflight
    run = start_run(cfg)

    # Data: steps tokenized, the separator after each step labelled good (1) or bad (0).
    text = load_processing(cfg)
    data = prepare(cfg, text.tokenizer, text.chat)

    # Model: a token-classification head (num_labels 2), with or without an adapter.
    # The engine's arguments exist before the model loads: ZeRO-3 and FSDP's rank-0 loading act then.
    args = engine_ready(to_training_args(cfg, run.precision, has_eval=data.eval is not None, tf32=run.tf32))
    model = trainable_model(cfg, run.precision, text.tokenizer, text.chat.stop_tokens)

    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data.train,
        eval_dataset=data.eval,
        data_collator=DataCollatorForTokenClassification(text.tokenizer),
        processing_class=text.tokenizer,
        compute_metrics=step_accuracy,
        optimizers=(custom_optimizer(model, cfg), None),
        callbacks=callbacks,
    )
    prepare_trainer(trainer, cfg, run)
    # Train, then the outputs: plain layers after QAT, the model, its quantized copy, the run's files.
    return train_and_save(trainer, cfg, run, data.stats)


def step_accuracy(prediction) -> dict:
    """Share of scored steps whose predicted label is right."""
    logits, labels = prediction.predictions, prediction.label_ids
    scored = labels != -100
    return {"step_accuracy": float((logits.argmax(-1)[scored] == labels[scored]).mean()) if scored.any() else np.nan}
