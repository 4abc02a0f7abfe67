"""Every optimizer name axo accepts trains on this machine, or stops at preflight saying why: a few
steps of the tiny model through the TrainingArguments axo builds, with each optimizer's package
installed by `make setup` (the `optimizers` extra). Each run must move the weights and keep the
loss finite: the optimizer was built and stepped. Those that cannot run on a CPU stop at preflight
with the reason, before anything loads."""

import math
from typing import get_args

import pytest
import torch

from axo.config.training import Optimizer
from axo.errors import AxoError
from axo.model.preflight import check_backends
from axo.train.args import to_training_args

CPU_REFUSED = {"adamw_anyprecision", "adalomo", "galore_adamw_8bit", "galore_adamw_8bit_layerwise",
               "galore_adafactor_layerwise"}


@pytest.mark.parametrize("name", [n for n in get_args(Optimizer) if n not in CPU_REFUSED])
def test_each_optimizer_steps_the_model(name, make_config, tiny_model):
    from transformers import AutoModelForCausalLM, Trainer

    galore = {"optim_target_modules": ["mlp", "self_attn"]} if name.startswith(("galore", "apollo")) else {}
    cfg = make_config(optimizer=name, max_steps=6, micro_batch_size=4, learning_rate=1e-2, **galore)
    check_backends(cfg)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    before = [p.detach().clone() for p in model.parameters()]
    torch.manual_seed(0)
    rows = [{"input_ids": (ids := torch.randint(3, 100, (16,)).tolist()), "labels": ids} for _ in range(24)]
    args = to_training_args(cfg, "fp32", has_eval=False)
    args.report_to = []
    out = Trainer(model=model, args=args, train_dataset=rows).train()
    assert math.isfinite(out.training_loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())), "no weight moved"


@pytest.mark.skipif(torch.cuda.is_available(), reason="these run on a CUDA machine")
@pytest.mark.parametrize("name", sorted(CPU_REFUSED))
def test_optimizers_that_cannot_run_here_stop_at_preflight(name, make_config):
    with pytest.raises(AxoError, match=f"`optimizer: {name}`"):
        check_backends(make_config(optimizer=name))
