"""Preference learning (DPO, IPO, ORPO, SimPO, KTO) and reward models through TRL: the recipe,
top to bottom. The method table (axo.methods) names each method's trainer and config mapping."""

import logging

from axo.config import Config

log = logging.getLogger("axo")


def train(cfg: Config, callbacks: list | None = None) -> dict:
    from axo.data.chat import load_processing
    from axo.data.prepare import prepare
    from axo.train.optimizers import custom_optimizer
    from axo.model.build import trainable_model
    from axo.model.loader import load_model
    from axo.train.outputs import train_and_save
    from axo.train.setup import engine_ready, prepare_trainer, start_run

    # Preflight
    run = start_run(cfg)
    method = cfg.method

    # Data: rows in TRL's conversational format; TRL renders them with the run's template.
    text = load_processing(cfg)
    data = prepare(cfg, text.tokenizer, text.chat)

    # Model and reference: with an adapter, TRL's reference is the model with the adapter switched
    # off; with precompute_ref_log_probs it is needed only before training. Otherwise a frozen copy.
    # The engine's arguments exist before the model loads: ZeRO-3 and FSDP's rank-0 loading act then.
    to_args = method.load("mapping")
    args = engine_ready(to_args(cfg, run.precision, has_eval=data.eval is not None, tf32=run.tf32))
    model = trainable_model(cfg, run.precision, text.tokenizer, text.chat.stop_tokens)
    needs_copy = method.reference_model and not cfg.lora.adapter and not cfg.rl.precompute_ref_log_probs
    extra = {"ref_model": _frozen(load_model(cfg, run.precision, text.tokenizer))} if needs_copy else {}

    trainer = method.load("trainer")(
        model=model,
        args=args,
        train_dataset=data.train,
        eval_dataset=data.eval,
        processing_class=text.tokenizer,
        optimizers=(custom_optimizer(model, cfg), None),
        callbacks=callbacks,
        **extra,
    )
    prepare_trainer(trainer, cfg, run)
    # Train, then the outputs: plain layers after QAT, the model, its quantized copy, the run's files.
    return train_and_save(trainer, cfg, run, data.stats)


def _frozen(model):
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
