"""Which recipe trains a config: the one its method's entry names (axo.methods)."""

from axo.config import Config


def run(cfg: Config) -> dict:
    return cfg.method.load("recipe").train(cfg)
