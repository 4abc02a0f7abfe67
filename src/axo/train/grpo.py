"""GRPO with the user's reward functions, through TRL's GRPOTrainer: the recipe, top to bottom.
Generation uses the training model unless `trl.use_vllm` is set, so it runs on a CPU."""

import logging

from axo.config import Config

log = logging.getLogger("axo")


def train(cfg: Config, callbacks: list | None = None) -> dict:
    from trl import GRPOTrainer

    from axo.config.user_code import resolve
    from axo.data.prompts import prepare_prompts
    from axo.model.build import trainable_model
    from axo.model.tokenizer import load_tokenizer
    from axo.train.outputs import save_run
    from axo.train.setup import prepare_trainer, start_run
    from axo.train.trl_args import to_grpo_config

    # Preflight: hardware, and the reward functions (already import-checked when the config loaded)
    run = start_run(cfg)
    reward_funcs = [resolve(path) for path in cfg.rl.trl.reward_funcs]

    # Prompts, then the model that answers them
    tokenizer = load_tokenizer(cfg)
    tokenizer.padding_side = "left"  # generation continues the prompt
    prompts = prepare_prompts(cfg, tokenizer)
    model = trainable_model(cfg, run.precision, tokenizer)

    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=to_grpo_config(cfg, run.precision, has_eval=False, tf32=run.tf32),
        train_dataset=prompts,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    prepare_trainer(trainer, cfg)
    result = trainer.train(resume_from_checkpoint=run.resume)
    return save_run(trainer, cfg, {**result.metrics, "precision": run.precision, "method": "grpo"})
