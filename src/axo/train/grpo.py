"""GRPO with the user's reward functions, through TRL's GRPOTrainer: the recipe, top to bottom.
Generation uses the training model unless `trl.use_vllm` is set, so it runs on a CPU."""

import logging
import os

from axo.config import Config

log = logging.getLogger("axo")


def train(cfg: Config, callbacks: list | None = None) -> dict:
    from trl import GRPOTrainer

    from axo.config.user_code import resolve
    from axo.data.prompts import prepare_prompts
    from axo.model.adapters import apply_adapter
    from axo.model.loader import load_model
    from axo.model.patches import apply_patches
    from axo.model.preflight import check_backends, resolve_precision, resolve_tf32
    from axo.model.tokenizer import load_tokenizer
    from axo.train.args import to_tracker_env
    from axo.train.callbacks import use_line_progress
    from axo.train.checkpoints import resume_checkpoint
    from axo.train.outputs import save_run
    from axo.train.trl_args import to_grpo_config

    # Preflight: hardware, and the reward functions (already import-checked when the config loaded)
    precision, tf32 = resolve_precision(cfg.model), resolve_tf32(cfg.model)
    check_backends(cfg)
    resume = resume_checkpoint(cfg.train)
    reward_funcs = [resolve(path) for path in cfg.rl.trl.reward_funcs]

    # Prompts, then the model that answers them
    tokenizer = load_tokenizer(cfg)
    tokenizer.padding_side = "left"  # generation continues the prompt
    prompts = prepare_prompts(cfg, tokenizer)
    model = load_model(cfg, precision, tokenizer)
    apply_patches(model, cfg)
    model = apply_adapter(model, cfg)

    os.environ.update(to_tracker_env(cfg.logging, cfg.train.output_dir, os.environ))
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=to_grpo_config(cfg, precision, has_eval=False, tf32=tf32),
        train_dataset=prompts,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    use_line_progress(trainer)
    result = trainer.train(resume_from_checkpoint=resume)
    return save_run(trainer, cfg, {**result.metrics, "precision": precision, "method": "grpo"})
