"""Supervised fine-tuning, full or with an adapter: the recipe, top to bottom."""

import logging
import os

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
    from axo.model.adapters import apply_adapter, loraplus_optimizer
    from axo.model.checks import align_end_tokens
    from axo.model.loader import load_config, load_model
    from axo.model.patches import apply_patches
    from axo.model.preflight import check_backends, resolve_precision, resolve_tf32
    from axo.model.tokenizer import load_processor, load_tokenizer
    from axo.train.args import to_tracker_env, to_training_args
    from axo.train.callbacks import use_line_progress
    from axo.train.checkpoints import resume_checkpoint
    from axo.train.outputs import save_run

    # Preflight: hardware-dependent choices, and the checkpoint to resume from.
    if cfg.model.task == "sequence_classification":
        raise AxoError(f"`model_type: {cfg.model.model_type}` is a classifier: it trains as a reward model "
                       "(`rl: reward`), not with SFT.")
    precision, tf32 = resolve_precision(cfg.model), resolve_tf32(cfg.model)
    check_backends(cfg)
    resume = resume_checkpoint(cfg.train)
    log.info("Training in %s", precision)

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
    vocab_before = _vocab_size(load_config(cfg))
    model = load_model(cfg, precision, tokenizer)
    align_end_tokens(cfg, tokenizer, model)
    apply_patches(model, cfg)
    model = apply_adapter(model, cfg, new_token_ids=range(vocab_before, len(tokenizer)))
    _log_parameters(model)

    os.environ.update(to_tracker_env(cfg.logging, cfg.train.output_dir, os.environ))
    trainer = Trainer(
        model=model,
        args=to_training_args(cfg, precision, has_eval=eval_rows is not None, tf32=tf32),
        train_dataset=train_rows,
        eval_dataset=eval_rows,
        data_collator=collator,
        processing_class=processing,
        optimizers=(loraplus_optimizer(model, cfg), None),
        callbacks=callbacks,
    )
    use_line_progress(trainer)
    result = trainer.train(resume_from_checkpoint=resume)

    return save_run(trainer, cfg, {**result.metrics, **packing, "precision": precision, "data": data.stats})


def _log_parameters(model) -> None:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("Parameters: %s trainable of %s (%.2f%%)", f"{trainable:,}", f"{total:,}",
             100 * trainable / max(total, 1))


def _vocab_size(config) -> int:
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return text.vocab_size
