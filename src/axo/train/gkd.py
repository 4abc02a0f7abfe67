"""Generalized knowledge distillation (`rl: gkd`, Agarwal et al. 2024) through TRL's GKDTrainer: the
recipe, top to bottom. On a share `trl.lmbda` of the steps the student answers the rows' prompts
itself and the teacher grades every token of those answers; on the others it learns the rows' own
answers (or the teacher's, `trl.seq_kd`). The loss is TRL's generalized Jensen-Shannon divergence
(`trl.beta`: 0 forward KL, 1 reverse KL)."""

from axo.config import Config


def train(cfg: Config, callbacks: list | None = None) -> dict:
    from trl.experimental.gkd import GKDTrainer

    from axo.data.chat import load_processing
    from axo.data.collator import OnPolicyCollator
    from axo.data.prepare import prepare
    from axo.model.build import trainable_model
    from axo.train.distill import load_teacher
    from axo.train.optimizers import custom_optimizer
    from axo.train.outputs import train_and_save
    from axo.train.setup import engine_ready, prepare_trainer, start_run
    from axo.train.trl_args import to_gkd_config

    # Preflight, then the rows: SFT's, whose prompts the student also answers itself
    run = start_run(cfg)
    text = load_processing(cfg)
    data = prepare(cfg, text.tokenizer, text.chat)

    # Student and teacher (frozen, the student's tokens)
    args = engine_ready(to_gkd_config(cfg, run.precision, has_eval=data.eval is not None, tf32=run.tf32))
    model = trainable_model(cfg, run.precision, text.tokenizer, text.chat.stop_tokens)
    teacher = load_teacher(cfg, run.precision, text.tokenizer)

    trainer = GKDTrainer(
        model=model,
        teacher_model=teacher,
        args=args,
        data_collator=OnPolicyCollator(text.tokenizer.pad_token_id),
        train_dataset=data.train,
        eval_dataset=data.eval,
        processing_class=text.tokenizer,
        optimizers=(custom_optimizer(model, cfg), None),
        callbacks=callbacks,
    )
    prepare_trainer(trainer, cfg, run)
    # Train, then the outputs: plain layers after QAT, the model, its quantized copy, the run's files.
    return train_and_save(trainer, cfg, run, data.stats)
