"""Preference learning (DPO, IPO, ORPO, SimPO, KTO) and reward models through TRL: the recipe,
top to bottom."""

import logging

from axo.config import Config
from axo.errors import AxoError

log = logging.getLogger("axo")


def method(cfg: Config):
    """(TRL trainer class, config mapping function) for the config's method."""
    from axo.train import trl_args

    name = "reward" if cfg.rl.reward_model else cfg.rl.rl
    if name in ("dpo", "ipo"):
        from trl import DPOTrainer
        return DPOTrainer, trl_args.to_dpo_config
    if name == "kto":
        from trl import KTOTrainer
        return KTOTrainer, trl_args.to_kto_config
    if name == "orpo":
        from trl.experimental.orpo import ORPOTrainer
        return ORPOTrainer, trl_args.to_orpo_config
    if name == "simpo":
        from trl.experimental.cpo import CPOTrainer
        return CPOTrainer, trl_args.to_simpo_config
    from trl import RewardTrainer
    return RewardTrainer, trl_args.to_reward_config


def train(cfg: Config, callbacks: list | None = None) -> dict:
    from axo.data.preference import prepare_preference, template_of
    from axo.data.templates import BUILTIN
    from axo.model.build import trainable_model
    from axo.model.loader import load_model
    from axo.model.tokenizer import load_tokenizer
    from axo.train.outputs import save_run
    from axo.train.setup import prepare_trainer, start_run

    # Preflight
    run = start_run(cfg)
    trainer_cls, to_config = method(cfg)

    # Data: rows in TRL's conversational format; TRL renders them with the tokenizer's template.
    tokenizer = load_tokenizer(cfg)
    implied = template_of(cfg.data.datasets[0])
    if not cfg.data.template_name and implied:
        tokenizer.chat_template = BUILTIN[implied]
    plain_text = cfg.data.datasets[0].type_name == "user_defined.default"
    if tokenizer.chat_template is None and not plain_text:
        raise AxoError("preference rows are conversations and the tokenizer has no chat template: set "
                       "`chat_template` (e.g. chatml).")
    train_rows, eval_rows = prepare_preference(cfg, tokenizer)

    # Model and reference: with an adapter, TRL's reference is the model with the adapter switched
    # off; with precompute_ref_log_probs it is needed only before training. Otherwise a frozen copy.
    model = trainable_model(cfg, run.precision, tokenizer)
    needs_copy = cfg.rl.rl in ("dpo", "ipo", "kto") and not cfg.lora.adapter and not cfg.rl.precompute_ref_log_probs
    extra = {"ref_model": _frozen(load_model(cfg, run.precision, tokenizer))} if needs_copy else {}

    trainer = trainer_cls(
        model=model,
        args=to_config(cfg, run.precision, has_eval=eval_rows is not None, tf32=run.tf32),
        train_dataset=train_rows,
        eval_dataset=eval_rows,
        processing_class=tokenizer,
        callbacks=callbacks,
        **extra,
    )
    prepare_trainer(trainer, cfg)
    result = trainer.train(resume_from_checkpoint=run.resume)

    method_name = "reward" if cfg.rl.reward_model else cfg.rl.rl
    return save_run(trainer, cfg, {**result.metrics, "precision": run.precision, "method": method_name})


def _frozen(model):
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model
