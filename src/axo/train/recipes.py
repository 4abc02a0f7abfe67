"""Which recipe trains a config."""

from axo.config import Config


def run(cfg: Config) -> dict:
    if cfg.rl.rl == "grpo":
        from axo.train.grpo import train
    elif cfg.rl.process_reward_model:
        from axo.train.process_reward import train
    elif cfg.rl.rl or cfg.rl.reward_model:
        from axo.train.preference import train
    else:
        from axo.train.sft import train
    return train(cfg)
