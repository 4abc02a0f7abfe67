"""Supervised fine-tuning, full or with an adapter, and knowledge distillation (SFT rows, the teacher's
loss: train/distill.py): the recipe, top to bottom."""

import logging

from axo.config import Config

log = logging.getLogger("axo")


def train(cfg: Config, callbacks: list | None = None) -> dict:
    """Run SFT as `cfg` says; `callbacks` are extra transformers TrainerCallbacks (for tools and
    benchmarks that embed axo)."""
    from axo.data.batches import trainer_inputs
    from axo.data.chat import load_processing
    from axo.data.prepare import prepare
    from axo.train.optimizers import custom_optimizer
    from axo.model.build import trainable_model
    from axo.train.args import to_training_args
    from axo.train.outputs import train_and_save
    from axo.train.setup import engine_ready, prepare_trainer, start_run

    # Preflight: hardware-dependent choices, and the checkpoint to resume from.
    run = start_run(cfg)
    log.info("Training in %s", run.precision)

    # Data, then model: a data mistake should fail before a large model is loaded.
    text = load_processing(cfg)
    data = prepare(cfg, text.tokenizer, text.chat, text.processor)
    inputs = trainer_inputs(cfg, data, text)
    # The engine's arguments exist before the model loads: ZeRO-3 and FSDP's rank-0 loading act then.
    args = engine_ready(to_training_args(cfg, run.precision, has_eval=inputs.eval is not None, tf32=run.tf32,
                                         rows_per_sequence=inputs.rows_per_sequence))
    model = trainable_model(cfg, run.precision, text.tokenizer, text.chat.stop_tokens)

    extra = {}
    if cfg.method.name == "kd":  # the teacher: log-probs in the rows, or a model run alongside
        from axo.train.distill import Distillation, load_teacher

        teacher = load_teacher(cfg, run.precision, text.tokenizer) if cfg.rl.teacher_model else None
        extra["distillation"] = Distillation.of(cfg, teacher)

    trainer = cfg.method.load("trainer")(
        model=model,
        args=args,
        train_dataset=inputs.train,
        eval_dataset=inputs.eval,
        data_collator=inputs.collator,
        processing_class=text.processing_class,
        optimizers=(custom_optimizer(model, cfg), None),
        callbacks=callbacks,
        **extra,
    )
    prepare_trainer(trainer, cfg, run)
    if cfg.train.do_causal_lm_eval:
        from axo.train.callbacks import GenerationEval

        stop_ids = text.tokenizer.convert_tokens_to_ids(list(text.chat.stop_tokens))
        trainer.add_callback(GenerationEval(trainer, text.tokenizer, data.eval, cfg, stop_ids))
    # Train, then the outputs: plain layers after QAT, the model, its quantized copy, the run's files.
    return train_and_save(trainer, cfg, run, data.stats, **inputs.stats)
