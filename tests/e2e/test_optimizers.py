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
from axo.train.optimizers import custom_optimizer

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
    out = Trainer(model=model, args=args, train_dataset=rows, optimizers=(custom_optimizer(model, cfg), None)).train()
    assert math.isfinite(out.training_loss)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())), "no weight moved"


@pytest.mark.skipif(torch.cuda.is_available(), reason="these run on a CUDA machine")
@pytest.mark.parametrize("name", sorted(CPU_REFUSED))
def test_optimizers_that_cannot_run_here_stop_at_preflight(name, make_config):
    with pytest.raises(AxoError, match=f"`optimizer: {name}`"):
        check_backends(make_config(optimizer=name))


def test_muon_steps_matrices_as_torch_muon_and_the_rest_as_adamw(make_config, tiny_model):
    """`optimizer: muon`: the hidden weight matrices take exactly torch's Muon step (update size
    matched to AdamW's, as Axolotl scales it), and embeddings, head and norms take AdamW's."""
    from transformers import AutoModelForCausalLM

    cfg = make_config(optimizer="muon", learning_rate=0.02, weight_decay=0.01)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    torch.manual_seed(0)
    ids = torch.randint(3, 100, (2, 16))
    model(input_ids=ids, labels=ids).loss.backward()
    matrix = model.model.layers[0].mlp.up_proj.weight
    norm, embed = model.model.layers[0].input_layernorm.weight, model.get_input_embeddings().weight
    reference = torch.optim.Muon([torch.nn.Parameter(matrix.detach().clone())], lr=0.02, weight_decay=0.01,
                                 adjust_lr_fn="match_rms_adamw")
    reference.param_groups[0]["params"][0].grad = matrix.grad.clone()
    reference.step()
    adamw = torch.optim.AdamW([torch.nn.Parameter(norm.detach().clone())], lr=0.02, weight_decay=0.01,
                              betas=(0.95, 0.95))
    adamw.param_groups[0]["params"][0].grad = norm.grad.clone()
    adamw.step()
    embed_before = embed.detach().clone()
    custom_optimizer(model, cfg).step()
    torch.testing.assert_close(matrix, reference.param_groups[0]["params"][0], rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(norm, adamw.param_groups[0]["params"][0], rtol=1e-6, atol=1e-7)
    assert not torch.equal(embed, embed_before)  # the embedding trains too, through AdamW


def test_muon_is_refused_where_matrices_are_sharded(make_config):
    from axo.errors import ConfigError

    with pytest.raises(ConfigError, match="`muon` orthogonalises whole weight matrices"):
        make_config(optimizer="muon", fsdp_version=2, fsdp_config={"reshard_after_forward": True})


def test_a_resumed_muon_run_equals_an_uninterrupted_one(make_config, tmp_path):
    """Muon's momentum and AdamW's moments travel in the checkpoint: resuming at step 3 of 6 ends at
    the weights of the run that never stopped."""
    import shutil

    from safetensors.torch import load_file

    from axo.train.sft import train

    keys = dict(optimizer="muon", learning_rate=0.02, max_steps=6, save_steps=3)
    whole = make_config(output_dir=str(tmp_path / "whole"), **keys)
    train(whole)
    cut = make_config(output_dir=str(tmp_path / "cut"), **keys)
    train(cut)
    shutil.rmtree(tmp_path / "cut" / "checkpoint-6")
    train(make_config(output_dir=str(tmp_path / "cut"), resume_from_checkpoint=str(tmp_path / "cut" / "checkpoint-3"),
                      **keys))
    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
