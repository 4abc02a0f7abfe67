"""Online RL with the user's reward functions through TRL: GRPO, RLOO and Online DPO (the trainer and
config mapping the method table names), the recipe, top to bottom. EBFT is GRPO with the
feature-matching reward (train/ebft.py). Generation uses the training model unless `trl.use_vllm`
is set, so it runs on a CPU."""

import logging

from axo.config import Config

log = logging.getLogger("axo")


def train(cfg: Config, callbacks: list | None = None) -> dict:
    from axo.config.user_code import resolve
    from axo.data.chat import load_processing
    from axo.data.prepare import prepare
    from axo.errors import AxoError
    from axo.train.optimizers import custom_optimizer
    from axo.model.build import trainable_model
    from axo.train.outputs import train_and_save
    from axo.train.setup import engine_ready, prepare_trainer, start_run

    # Preflight: hardware, and the reward functions (already import-checked when the config loaded)
    run = start_run(cfg)
    ebft = cfg.method.name == "ebft"
    reward_funcs = [] if ebft else [resolve(path) for path in cfg.rl.trl.reward_funcs]

    # Prompts, then the model that answers them
    text = load_processing(cfg)
    data = prepare(cfg, text.tokenizer, text.chat)
    text.tokenizer.padding_side = "left"  # generation continues the prompt
    # The engine's arguments exist before the model loads: ZeRO-3 and FSDP's rank-0 loading act then.
    try:
        args = cfg.method.load("mapping")(cfg, run.precision, has_eval=data.eval is not None, tf32=run.tf32)
    except ValueError as err:  # TRL's own checks, mostly of how sampling fills the batches
        fix = ("make micro_batch_size x gradient_accumulation_steps x processes a multiple of `trl.num_generations` "
               "(TRL's per_device_train_batch_size is `micro_batch_size`; its steps_per_generation defaults to "
               "`gradient_accumulation_steps`)" if "num_generations" in str(err) else "change the `trl:` option it names")
        raise AxoError(f"TRL refuses these `rl: {cfg.method.name}` settings: {err} Fix: {fix}.") from None
    args = engine_ready(args)
    model = trainable_model(cfg, run.precision, text.tokenizer, text.chat.stop_tokens)
    if ebft:  # its reward reads the starting model, so it exists once the model does
        from axo.train.ebft import FeatureMatching

        reward_funcs = FeatureMatching(model, text.tokenizer, cfg.rl.ebft_options, cfg.data.sequence_len,
                                       args.chat_template_kwargs).reward_funcs

    trainer = cfg.method.load("trainer")(
        model=model,
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=data.train,
        eval_dataset=data.eval,
        processing_class=text.tokenizer,
        optimizers=(custom_optimizer(model, cfg), None),
        callbacks=callbacks,
    )
    prepare_trainer(trainer, cfg, run)
    # Train, then the outputs: plain layers after QAT, the model, its quantized copy, the run's files.
    return train_and_save(trainer, cfg, run, data.stats)
