"""Supervised fine-tuning, full or with an adapter: the recipe, top to bottom."""

import logging

from axo.config import Config
from axo.errors import AxoError

log = logging.getLogger("axo")


def train(cfg: Config, callbacks: list | None = None) -> dict:
    """Run SFT as `cfg` says; `callbacks` are extra transformers TrainerCallbacks (for tools and
    benchmarks that embed axo)."""
    from transformers import Trainer

    from axo.data.collator import Collator
    from axo.data.packing import trainer_datasets
    from axo.data.prepare import prepare, prepare_raw
    from axo.data.vision import VisionCollator, vision_context
    from axo.model.adapters import loraplus_optimizer
    from axo.model.build import trainable_model
    from axo.model.tokenizer import load_processor, load_tokenizer
    from axo.train.args import to_training_args
    from axo.train.outputs import save_run
    from axo.train.setup import prepare_trainer, start_run

    # Preflight: hardware-dependent choices, and the checkpoint to resume from.
    if cfg.model.task == "sequence_classification":
        raise AxoError(f"`model_type: {cfg.model.model_type}` is a classifier: it trains as a reward model "
                       "(`rl: reward`), not with SFT.")
    run = start_run(cfg)
    log.info("Training in %s", run.precision)

    # Data, then model: a data mistake should fail before a large model is loaded.
    tokenizer = load_tokenizer(cfg)
    if cfg.model.task == "image_text_to_text":
        processing = load_processor(cfg, tokenizer)
        data = prepare_raw(cfg)
        train_rows, eval_rows, packing = data.train, data.eval, {}
        collator = VisionCollator(processing, vision_context(cfg, processing), cfg.data.train_on_inputs)
    else:
        processing = tokenizer
        data = prepare(cfg, tokenizer)
        train_rows, eval_rows, packing = trainer_datasets(cfg, data)
        collator = Collator(tokenizer.pad_token_id, cfg.data.sequence_len if cfg.data.pad_to_sequence_len else None)
    model = trainable_model(cfg, run.precision, tokenizer)

    trainer = Trainer(
        model=model,
        args=to_training_args(cfg, run.precision, has_eval=eval_rows is not None, tf32=run.tf32),
        train_dataset=train_rows,
        eval_dataset=eval_rows,
        data_collator=collator,
        processing_class=processing,
        optimizers=(loraplus_optimizer(model, cfg), None),
        callbacks=callbacks,
    )
    prepare_trainer(trainer, cfg)
    result = trainer.train(resume_from_checkpoint=run.resume)

    return save_run(trainer, cfg, {**result.metrics, **packing, "precision": run.precision, "data": data.stats})
