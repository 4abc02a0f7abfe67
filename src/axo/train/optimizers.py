"""Optimizers axo builds itself, for the names transformers does not have: LoRA+ (peft's) and
Muon (torch's algorithm, as Axolotl's `optimizer: muon` runs it). Every other name is
transformers' own, built by the Trainer from `optim`."""

import torch

from axo.config import Config


def custom_optimizer(model, cfg: Config):
    """The optimizer the Trainer gets, or None to let it build `optimizer` by name."""
    from axo.model.adapters import loraplus_optimizer

    if cfg.train.optimizer == "muon":
        return muon_optimizer(model, cfg)
    return loraplus_optimizer(model, cfg)


def muon_optimizer(model, cfg: Config) -> "MuonWithAdamW":
    """Muon for the hidden weight matrices; AdamW for the embeddings, the output head and every
    1-D parameter (norms, biases), the split Muon is defined with. (Axolotl's factory leaves the 1-D
    parameters out of the optimizer, so they never train; here they do.)"""
    t = cfg.train
    head, embed = model.get_output_embeddings(), model.get_input_embeddings()
    skip = {id(p) for m in (head, embed) if m is not None for p in m.parameters()}
    matrices, others = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        whole = p.ndim == 2 and id(p) not in skip and "modules_to_save" not in name
        (matrices if whole else others).append(p)
    return MuonWithAdamW(matrices, others, lr=t.learning_rate, weight_decay=t.weight_decay,
                         betas=(t.adam_beta1 or 0.95, t.adam_beta2 or 0.95), eps=t.adam_epsilon or 1e-8)


class MuonWithAdamW(torch.optim.Optimizer):
    """One optimizer, two rules: torch's Muon step (Newton-Schulz orthogonalised momentum, learning
    rate scaled by 0.2 * sqrt(max(rows, columns)) so it matches AdamW's update size, as Moonlight
    and Axolotl scale it) on the matrix group, AdamW on the other. One object, so the scheduler,
    gradient clipping and checkpoints see every parameter."""

    def __init__(self, matrices, others, lr: float, weight_decay: float, betas=(0.95, 0.95), eps=1e-8,
                 momentum: float = 0.95, ns_steps: int = 5):
        from torch.optim._muon import DEFAULT_A, DEFAULT_B, DEFAULT_C, EPS

        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=True, ns_steps=ns_steps,
                        ns_coefficients=(DEFAULT_A, DEFAULT_B, DEFAULT_C), ns_eps=EPS, betas=betas, eps=eps)
        groups = [{"params": list(matrices), "muon": True}, {"params": list(others), "muon": False}]
        super().__init__([g for g in groups if g["params"]], defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            (self._muon if group["muon"] else self._adamw)(group, params)
        return loss

    def _muon(self, group, params) -> None:
        from torch.optim._muon import muon

        bufs = [self.state[p].setdefault("momentum_buffer", torch.zeros_like(p.grad)) for p in params]
        muon(params, [p.grad for p in params], bufs, lr=group["lr"], weight_decay=group["weight_decay"],
             momentum=group["momentum"], nesterov=group["nesterov"], ns_coefficients=group["ns_coefficients"],
             eps=group["ns_eps"], ns_steps=group["ns_steps"], adjust_lr_fn="match_rms_adamw", has_complex=False)

    def _adamw(self, group, params) -> None:
        beta1, beta2 = group["betas"]
        for p in params:
            state = self.state[p]
            if not state:
                state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
            state["step"] += 1
            state["exp_avg"].lerp_(p.grad, 1 - beta1)
            state["exp_avg_sq"].mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            bias1, bias2 = 1 - beta1 ** state["step"], 1 - beta2 ** state["step"]
            p.mul_(1 - group["lr"] * group["weight_decay"])
            denom = (state["exp_avg_sq"] / bias2).sqrt_().add_(group["eps"])
            p.addcdiv_(state["exp_avg"], denom, value=-group["lr"] / bias1)
