"""LISA (`lisa_n_layers`): in each interval exactly the drawn decoder layers move, while the
embeddings and norms train at every step; the draw is the seed's, so a second run draws the same."""

import logging

import pytest
import torch
from transformers import TrainerCallback

from axo.errors import AxoError
from axo.train.sft import train

LISA = {"lisa_n_layers": 1, "lisa_step_interval": 2, "max_steps": 8}


class Moved(TrainerCallback):
    """After each step: which decoder layers changed, and whether the embedding did."""

    def __init__(self):
        self.before, self.steps = None, []

    def snapshot(self, model):
        return [torch.cat([p.detach().flatten() for p in layer.parameters()]).clone() for layer in model.model.layers], \
            model.model.embed_tokens.weight.detach().clone()

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        self.before = self.snapshot(model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        (layers, embed), (old_layers, old_embed) = self.snapshot(model), self.before
        moved = [i for i, (a, b) in enumerate(zip(layers, old_layers)) if not torch.equal(a, b)]
        self.steps.append((moved, not torch.equal(embed, old_embed)))


def test_lisa_trains_the_drawn_layer_of_each_interval(make_config, caplog):
    runs = []
    for name in ("first", "second"):
        moved = Moved()
        with caplog.at_level(logging.INFO, logger="axo"):
            train(make_config(output_dir=str(make_config().train.output_dir) + name, **LISA), callbacks=[moved])
        runs.append(moved.steps)
    steps = runs[0]
    assert len(steps) == 8
    assert all(len(layers) == 1 and embedding for layers, embedding in steps), steps
    draws = [steps[i][0] for i in range(0, 8, 2)]
    assert all(steps[i][0] == steps[i + 1][0] for i in range(0, 8, 2)), steps  # constant within an interval
    assert len({d[0] for d in draws}) == 2, draws  # both layers get their turn (seed 0 draws both)
    assert runs[1] == runs[0]  # the seed's draw, not the process's random state
    assert "LISA: layers [" in caplog.text


def test_lisa_mistakes(make_config):
    from axo.errors import ConfigError

    with pytest.raises(ConfigError, match="LISA chooses which layers of a full fine-tune train"):
        make_config(lisa_n_layers=1, adapter="lora")
    with pytest.raises(AxoError, match="has no such attribute"):
        train(make_config(lisa_n_layers=1, lisa_layers_attribute="model.blocks", max_steps=1))
    with pytest.raises(AxoError, match="the model has 2 layers"):
        train(make_config(lisa_n_layers=3, max_steps=1))
