"""Axolotl's linearized Llama 4 checkpoints (`llama4_linearized_experts: true`): each expert's gate,
up and down projections stored as their own Linear layers (`experts.gate_projs.{i}.weight`, ...)
instead of transformers' two fused 3-D parameters, so that LoRA and 4-bit quantization reach every
expert (Axolotl publishes such checkpoints, e.g. axolotl-quants/Llama-4-Scout-17B-16E-Linearized-
bnb-nf4-bf16). axo builds the model class with linear experts from the start, so from_pretrained
(and bitsandbytes, which quantizes Linear layers as they load) reads those keys directly; a merged
model is fused back into transformers' layout, so it loads in plain transformers."""

import logging

import torch
from torch import nn

log = logging.getLogger("axo")


class LinearizedExperts(nn.Module):
    """Computes what transformers' Llama4TextExperts computes: tokens arrive grouped by expert
    (num_experts x tokens, hidden); each group goes through its expert's SwiGLU."""

    def __init__(self, config):
        from transformers.activations import ACT2FN

        super().__init__()
        self.num_experts, self.hidden_size = config.num_local_experts, config.hidden_size
        self.expert_dim = config.intermediate_size

        def linears(n_in, n_out):
            return nn.ModuleList(nn.Linear(n_in, n_out, bias=False) for _ in range(self.num_experts))

        self.gate_projs = linears(self.hidden_size, self.expert_dim)
        self.up_projs = linears(self.hidden_size, self.expert_dim)
        self.down_projs = linears(self.expert_dim, self.hidden_size)
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        grouped = hidden_states.view(self.num_experts, -1, self.hidden_size)
        out = [down(up(x) * self.act_fn(gate(x)))
               for x, gate, up, down in zip(grouped, self.gate_projs, self.up_projs, self.down_projs)]
        return torch.stack(out).view(-1, self.hidden_size)


def linearized_class(cls, config):
    """A subclass of the Llama 4 class `cls` (an Auto class is resolved through `config`) whose MoE
    layers hold LinearizedExperts. It keeps the class's name, so saved configs name the usual class."""
    from axo.errors import AxoError

    if getattr(config, "model_type", None) not in ("llama4", "llama4_text"):
        raise AxoError(f"`llama4_linearized_experts` reads Llama 4 checkpoints; this model is a "
                       f"{getattr(config, 'model_type', '?')!r}. Fix: remove the key.")
    if cls.__name__.startswith("Auto"):
        cls = cls._model_mapping[type(config)]

    class Linearized(cls):
        def __init__(self, config, *args, **kwargs):
            super().__init__(config, *args, **kwargs)
            text = config.get_text_config()
            for name, module in list(self.named_modules()):
                if type(module).__name__ == "Llama4TextExperts":
                    parent, _, child = name.rpartition(".")
                    setattr(self.get_submodule(parent), child, LinearizedExperts(text))

    Linearized.__name__ = Linearized.__qualname__ = cls.__name__
    return Linearized


@torch.no_grad()
def fuse_experts(model) -> int:
    """Put every LinearizedExperts back as transformers' Llama4TextExperts, holding the same weights
    (gate_up_proj[e] = [gate_e^T | up_e^T], down_proj[e] = down_e^T). Returns how many it fused."""
    from transformers.models.llama4.modeling_llama4 import Llama4TextExperts

    text = model.config.get_text_config()
    fused = 0
    for name, module in list(model.named_modules()):
        if not isinstance(module, LinearizedExperts):
            continue
        weight = module.gate_projs[0].weight
        experts = Llama4TextExperts(text).to(device=weight.device, dtype=weight.dtype)
        experts.gate_up_proj.copy_(torch.stack([torch.cat([g.weight.T, u.weight.T], dim=-1)
                                                for g, u in zip(module.gate_projs, module.up_projs)]))
        experts.down_proj.copy_(torch.stack([d.weight.T for d in module.down_projs]))
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, experts)
        fused += 1
    if fused:
        log.info("Fused the linearized experts of %d layers back into transformers' Llama 4 layout", fused)
    return fused
