"""Each patch in axo.model.patches: what it changes, and that loss and gradients stay the same."""

import torch

from axo.data.collator import Collator
from axo.model.loader import load_model
from axo.model.patches import PATCHES, apply_patches

ROWS = [{"input_ids": [0, 5, 6, 7, 8, 9, 10], "labels": [-100, -100, -100, 7, 8, 9, 10]},
        {"input_ids": [0, 11, 12, 13], "labels": [-100, -100, 12, 13]}]


def loss_and_grads(model, batch, n_items):
    model.zero_grad()
    model.train()
    loss = model(**batch, num_items_in_batch=torch.tensor(n_items)).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def compare(make_config, **keys):
    batch = Collator(0)(ROWS)
    n = int((batch["labels"][:, 1:] != -100).sum())
    plain = load_model(make_config(), "fp32")
    patched = load_model(make_config(**keys), "fp32")
    applied = apply_patches(patched, make_config(**keys))
    loss_a, grads_a = loss_and_grads(plain, batch, n)
    loss_b, grads_b = loss_and_grads(patched, batch, n)
    torch.testing.assert_close(loss_b, loss_a, rtol=1e-5, atol=0)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], rtol=1e-4, atol=1e-7, msg=name)
    return patched, applied, batch


def test_every_patch_is_listed_with_its_condition():
    assert [p.name for p in PATCHES] == ["chunked cross-entropy", "activation offloading",
                                         "no KV cache in a multimodal model's parts"]
    # (the last one's effect: packed multimodal rows stay apart, test_multimodal_families.py)


def test_activation_offloading_keeps_loss_and_gradients(make_config):
    model, applied, _ = compare(make_config, gradient_checkpointing="offload")
    assert applied == ["activation offloading"] and hasattr(model.forward, "__wrapped__")


def test_chunked_cross_entropy_keeps_loss_and_gradients_without_logits(make_config):
    model, applied, batch = compare(make_config, chunked_cross_entropy=True, chunked_cross_entropy_num_chunks=3)
    assert applied == ["chunked cross-entropy"]
    assert model(**batch).logits is None  # the full logits are never built
    without_labels = {k: v for k, v in batch.items() if k != "labels"}
    assert model(**without_labels).logits.shape == (2, 7, model.config.vocab_size)  # generation still works


def test_no_patch_by_default(make_config):
    assert apply_patches(load_model(make_config(), "fp32"), make_config()) == []


def test_offloading_wraps_the_chunked_loss(make_config):
    """Both on: offloading is the outer forward and the chunked loss runs inside it (before, the
    chunked forward replaced the offloaded one and offloading silently stopped)."""
    cfg = make_config(chunked_cross_entropy=True, gradient_checkpointing="offload")
    model = load_model(cfg, "fp32")
    original = model.forward
    assert apply_patches(model, cfg) == ["chunked cross-entropy", "activation offloading"]
    chunked = model.forward.__wrapped__
    assert chunked is not original and chunked.__wrapped__ == original
