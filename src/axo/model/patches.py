"""Every change axo makes to a loaded model, in one list. Each patch wraps a method of the model
instance it is given, never a library class or module, and says when it is on. tests/unit/
test_patches.py shows what each one changes and that the loss and gradients stay the same.

Other speed-ups are the libraries' own and are only switched on through TrainingArguments
(train/args.py): NEFTune (`neftune_noise_alpha`), Liger kernels (`use_liger_kernel`),
gradient checkpointing (`gradient_checkpointing`).

Changes made to a Trainer rather than a model, both applied by train/setup.py: prepare_trainer:
- `train/schedules.py: install_schedule` replaces the instance's `create_scheduler` when
  `cosine_constant_lr_ratio` or `lr_quadratic_warmup` asks for a schedule transformers does not have
  (tests/e2e/test_axolotl_configs.py checks the learning rate step by step);
- `parallel/engines.py: shard_on_cpu` marks the run's accelerate state as FSDP when FSDP is asked
  for on CPU processes, where accelerate would silently train plain DDP (tests/distributed shows
  every parameter sharded and the result equal to DDP). QAT's module swap (model/qat.py) is a
training method, not a patch: it is undone before saving."""

import functools
import logging
from dataclasses import dataclass
from typing import Callable

from axo.config import Config
from axo.errors import AxoError

log = logging.getLogger("axo")


def offload_activations(model, cfg: Config) -> None:
    """Tensors saved for backward go to CPU memory (pinned on a GPU machine) during forward and come
    back for backward: with checkpointing, only the layer inputs are saved, so GPU memory for
    activations stays near constant in depth."""
    import torch

    forward = model.forward

    @functools.wraps(forward)
    def offloaded(*args, **kwargs):
        if not torch.is_grad_enabled():
            return forward(*args, **kwargs)
        with torch.autograd.graph.save_on_cpu(pin_memory=torch.cuda.is_available()):
            return forward(*args, **kwargs)

    model.forward = offloaded


def chunked_cross_entropy(model, cfg: Config) -> None:
    """The loss is computed on the trained positions only, in chunks, each chunk's logits recomputed
    in backward: the [tokens x vocab] fp32 logits never exist at once. Returns no logits."""
    import torch
    from transformers.modeling_outputs import CausalLMOutputWithPast

    if getattr(model.config, "final_logit_softcapping", None):
        raise AxoError("`chunked_cross_entropy` does not apply logit soft-capping, which this model uses. "
                       "Fix: remove `chunked_cross_entropy`.")
    chunks = cfg.train.chunked_cross_entropy_num_chunks
    forward, decoder, head = model.forward, model.get_decoder(), model.get_output_embeddings()

    @functools.wraps(forward)
    def chunked(input_ids=None, labels=None, num_items_in_batch=None, **kwargs):
        if labels is None:
            return forward(input_ids=input_ids, **kwargs)
        kwargs.pop("logits_to_keep", None)
        hidden = decoder(input_ids=input_ids, **kwargs).last_hidden_state
        targets = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=-100).reshape(-1)
        keep = targets != -100
        hidden, targets = hidden.reshape(-1, hidden.shape[-1])[keep], targets[keep]
        total = hidden.new_zeros((), dtype=torch.float32)
        for h, t in zip(hidden.chunk(chunks), targets.chunk(chunks)):
            total = total + torch.utils.checkpoint.checkpoint(_chunk_loss, head, h, t, use_reentrant=False)
        count = num_items_in_batch if num_items_in_batch is not None else max(int(keep.sum()), 1)
        return CausalLMOutputWithPast(loss=total / count)

    model.forward = chunked


def _chunk_loss(head, hidden, targets):
    import torch

    return torch.nn.functional.cross_entropy(head(hidden).float(), targets, reduction="sum")


@dataclass(frozen=True)
class Patch:
    name: str
    when: Callable[[Config], bool]
    apply: Callable[[object, Config], None]


PATCHES = [
    Patch("activation offloading", lambda c: c.train.gradient_checkpointing == "offload", offload_activations),
    Patch("chunked cross-entropy", lambda c: c.train.chunked_cross_entropy and c.model.task == "causal_lm",
          chunked_cross_entropy),
]


def apply_patches(model, cfg: Config) -> list[str]:
    applied = []
    for patch in PATCHES:
        if patch.when(cfg):
            patch.apply(model, cfg)
            applied.append(patch.name)
    if applied:
        log.info("Patched the model: %s", ", ".join(applied))
    return applied
