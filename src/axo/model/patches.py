"""Every change axo makes to a loaded model, in one list. Each patch wraps a method of the model
instance it is given (or sets a value of its parts' configs), never a library class or module, and
says when it is on. tests/unit/
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
    in backward: the [tokens x vocab] fp32 logits never exist at once. Returns no logits.

    The output head is looked up at every call, so it is the module that is there when training runs:
    peft's wrapper when the adapter trains the head (LoRA on lm_head, a modules_to_save copy, trainable
    token rows of a tied head), not the frozen layer it wraps. The model's own logit scaling (Cohere's
    logit_scale, Granite's logits_scaling) and soft-capping (Gemma 2/3) are applied as its forward does."""
    import torch
    from transformers.modeling_outputs import CausalLMOutputWithPast

    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    if getattr(config, "output_router_logits", False):
        raise AxoError("`chunked_cross_entropy` does not add the router's load-balancing loss that this MoE model "
                       "trains with (`output_router_logits`). Fix: remove `chunked_cross_entropy`.")
    chunks = cfg.train.chunked_cross_entropy_num_chunks
    forward, decoder = model.forward, model.get_decoder()
    scale = (getattr(config, "logit_scale", None) or 1.0) / (getattr(config, "logits_scaling", None) or 1.0)
    cap = getattr(config, "final_logit_softcapping", None)

    def chunk_loss(hidden, targets):
        logits = model.get_output_embeddings()(hidden).float() * scale
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return torch.nn.functional.cross_entropy(logits, targets, reduction="sum")

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
            total = total + torch.utils.checkpoint.checkpoint(chunk_loss, h, t, use_reentrant=False)
        count = num_items_in_batch if num_items_in_batch is not None else max(int(keep.sum()), 1)
        return CausalLMOutputWithPast(loss=total / count)

    model.forward = chunked


def no_cache_in_parts(model, cfg: Config) -> None:
    """The Trainer turns the KV cache off in the model's own config (TrainingArguments.use_cache), but a
    multimodal model's language model reads its sub-config: with the cache on there, it builds a cache
    no training step reads and, seeing one, does not keep packed rows apart. Off in every part, as the
    Trainer leaves the top config (config.json says so; generate() turns it back on)."""
    for module in model.modules():
        config = getattr(module, "config", None)
        if getattr(config, "use_cache", None):
            config.use_cache = False


@dataclass(frozen=True)
class Patch:
    name: str
    when: Callable[[Config], bool]
    apply: Callable[[object, Config], None]


# In this order: offloading wraps whatever forward runs, the chunked loss included.
PATCHES = [
    Patch("chunked cross-entropy", lambda c: c.train.chunked_cross_entropy and c.model.task == "causal_lm",
          chunked_cross_entropy),
    Patch("activation offloading", lambda c: c.train.gradient_checkpointing == "offload", offload_activations),
    Patch("no KV cache in a multimodal model's parts", lambda c: c.model.task == "multimodal_lm", no_cache_in_parts),
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
