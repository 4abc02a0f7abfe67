"""Packing is exactly equivalent to training the rows one by one: the summed token loss and
every gradient agree to 1e-5 (relative, fp32) for Llama and Qwen2 with sdpa and eager."""

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

from axo.data.collator import Collator
from axo.data.packing import PackedRows, pack_bins
from axo.data.tokenize import IGNORE

VOCAB = 96


def tiny(family: str, attn: str):
    common = dict(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    config = LlamaConfig(**common) if family == "llama" else Qwen2Config(**common)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation=attn, dtype=torch.float32)
    # As the Trainer sets it (TrainingArguments.use_cache=False). With a cache, transformers
    # does not derive the block-diagonal mask from position_ids.
    model.config.use_cache = False
    return model


def make_rows(lengths, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    rows = []
    for n in lengths:
        ids = rng.integers(1, VOCAB, n).tolist()
        labels = [IGNORE] * (n // 3) + ids[n // 3:]  # a masked "prompt", then trained tokens
        rows.append({"input_ids": ids, "labels": labels, "length": n})
    return Dataset.from_list(rows)


def one_pack(rows: Dataset, capacity: int) -> dict:
    return PackedRows(rows, [np.arange(len(rows))], capacity, np.array(rows["length"]))[0]


def summed_loss(model, batch) -> torch.Tensor:
    logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    labels = batch["labels"][:, 1:]
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, VOCAB), labels.reshape(-1), ignore_index=IGNORE, reduction="sum")


def loss_and_grads(model, batches):
    model.zero_grad()
    total = sum(summed_loss(model, b) for b in batches)
    total.backward()
    return total.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm().clamp_min(1e-12)).item()


@pytest.mark.parametrize("family", ["llama", "qwen2"])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_equals_unpacked(family, attn):
    rows = make_rows([5, 9, 3, 12, 7, 16, 4])
    model = tiny(family, attn)
    collate = Collator(pad_token_id=0)
    one_by_one = [collate([r]) for r in rows]  # no padding at all
    lengths = np.array(rows["length"])
    packed = PackedRows(rows, pack_bins(lengths, capacity=24), capacity=24, lengths=lengths)
    assert len(packed) < len(rows)
    packs = [collate([packed[i] for i in range(len(packed))])]  # all packs in one padded batch

    loss_u, grads_u = loss_and_grads(model, one_by_one)
    loss_p, grads_p = loss_and_grads(model, packs)
    assert relative_error(loss_p, loss_u) < 1e-5
    for name in grads_u:
        assert relative_error(grads_p[name], grads_u[name]) < 1e-5, name


def test_without_position_ids_rows_would_leak_into_each_other():
    """The check above can fail: the same pack read as one long sequence gives another loss."""
    rows = make_rows([5, 9, 3, 12])
    model = tiny("llama", "sdpa")
    collate = Collator(pad_token_id=0)
    loss_u, _ = loss_and_grads(model, [collate([r]) for r in rows])
    pack = collate([one_pack(rows, 64)])
    leaky = {"input_ids": pack["input_ids"], "labels": pack["labels"]}
    loss_leaky, _ = loss_and_grads(model, [leaky])
    assert relative_error(loss_leaky, loss_u) > 1e-3


def test_model_loss_with_num_items_matches_summed_loss():
    """The Trainer path: the model's own loss, normalised by the batch's token count."""
    rows = make_rows([6, 11, 4, 8])
    model = tiny("llama", "sdpa")
    batch = Collator(0)([one_pack(rows, 64)])
    n = int((batch["labels"][:, 1:] != IGNORE).sum())
    loss = model(**batch, num_items_in_batch=torch.tensor(n)).loss
    expected = sum(summed_loss(model, Collator(0)([r])) for r in rows)
    assert relative_error(loss * n, expected) < 1e-5


def test_pack_labels_mask_each_rows_first_position_and_pad_separately():
    rows = make_rows([4, 3])
    rows = rows.map(lambda r: {"labels": r["input_ids"]})  # every token trained
    batch = Collator(0, pad_to=10)([one_pack(rows, 10)])
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 0, 1, 2, 0, 1, 2]]
    assert batch["labels"][0, [0, 4]].tolist() == [IGNORE, IGNORE]  # never predicted across rows
    assert (batch["labels"][0, 7:] == IGNORE).all() and "attention_mask" not in batch


def test_first_fit_decreasing():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 100, 5000)
    bins = pack_bins(lengths, capacity=128)
    assigned = np.sort(np.concatenate(bins))
    assert np.array_equal(assigned, np.arange(len(lengths)))  # every row exactly once
    assert all(lengths[b].sum() <= 128 for b in bins)
    lower_bound = int(np.ceil(lengths.sum() / 128))
    assert len(bins) <= 1.02 * lower_bound + 1  # FFD is near-optimal on such data


def test_sequential_packing_keeps_order():
    lengths = np.array([5, 5, 5, 8, 2, 9])
    bins = pack_bins(lengths, capacity=10, sequential=True)
    assert [b.tolist() for b in bins] == [[0, 1], [2], [3, 4], [5]]
    assert np.array_equal(np.concatenate(bins), np.arange(6))


def test_row_longer_than_a_bin_is_refused():
    with pytest.raises(ValueError, match="cannot fit"):
        pack_bins(np.array([3, 20]), capacity=10)


def test_flattened_micro_batch_is_what_varlen_attention_needs():
    """For flash-attention the collator flattens a micro-batch of 4 packs into one row: transformers'
    own boundary detection then finds exactly the rows, and attention on that row (sdpa here, the
    same masks) gives the loss and gradients of the rows one by one."""
    from transformers.modeling_flash_attention_utils import _is_packed_sequence, prepare_fa_kwargs_from_position_ids

    rows = make_rows([5, 9, 3, 12, 7, 16, 4, 11, 6, 8, 2, 10])
    lengths = np.array(rows["length"])
    packed = PackedRows(rows, pack_bins(lengths, capacity=24), capacity=24, lengths=lengths)
    micro_batch = [packed[i] for i in range(4)]
    batch = Collator(pad_token_id=0, flatten=True)(micro_batch)
    assert batch["input_ids"].shape[0] == 1 and "attention_mask" not in batch
    in_order = [int(lengths[i]) for b in range(4) for i in packed.bins[b]]
    (cu_seqlens, _), _ = prepare_fa_kwargs_from_position_ids(batch["position_ids"])
    assert cu_seqlens.tolist() == np.cumsum([0] + in_order).tolist()
    assert _is_packed_sequence(batch["position_ids"], batch_size=1)
    assert not _is_packed_sequence(Collator(pad_token_id=0)(micro_batch)["position_ids"], batch_size=4)  # the leak

    model = tiny("llama", "sdpa")
    rows_in_batch = [rows[int(i)] for b in range(4) for i in packed.bins[b]]
    loss_u, grads_u = loss_and_grads(model, [Collator(pad_token_id=0)([r]) for r in rows_in_batch])
    loss_f, grads_f = loss_and_grads(model, [batch])
    assert relative_error(loss_f, loss_u) < 1e-5
    for name in grads_u:
        assert relative_error(grads_f[name], grads_u[name]) < 1e-5, name


def test_pack_length_follows_the_cost_of_attention():
    from axo.data.packing import packs_per_sequence

    rng = np.random.default_rng(0)
    short = np.clip(rng.lognormal(5.0, 0.6, 2000), 16, 400).astype(int)
    # attention as costly as the rest at 500 tokens of context (a small model): cut 2048 into short packs
    split = packs_per_sequence(short, 2048, span=500)
    assert split >= 4 and 2048 // split >= short.max()  # every row still fits a pack
    # a big model (attention cheap next to its weights) keeps whole packs unless cutting wastes nothing
    assert packs_per_sequence(short, 2048, span=1e9) <= split
    assert packs_per_sequence(np.array([2000, 1500, 30]), 2048, span=500) == 1  # a row near sequence_len
    # the cut chosen is the cheapest: pack slots x (1 + pack length / span), over every cut that fits
    costs = {k: len(pack_bins(short, 2048 // k)) * (2048 // k) * (1 + (2048 // k) / 500)
             for k in range(1, 2048 // short.max() + 1)}
    assert costs[split] == min(costs.values())
    # a long sequence_len and short rows: many cuts fit, the tried ones skip most (doublings past 8)
    many = np.clip(rng.lognormal(3.5, 0.5, 300_000), 4, 100).astype(int)
    assert 8192 // packs_per_sequence(many, 8192, span=500) >= many.max()


def test_attention_span_of_a_llama():
    from transformers import LlamaConfig

    from axo.data.packing import attention_span

    config = LlamaConfig(hidden_size=384, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=6,
                         num_key_value_heads=6, vocab_size=32000)
    weights = 4 * (4 * 384 * 384 + 3 * 384 * 1024) + 32000 * 384  # layers' linear weights + output head
    assert attention_span(config) == weights / (2 * 384 * 4)


def test_split_packs_keep_the_tokens_of_a_step(make_config):
    from axo.data.batches import trainer_inputs
    from axo.data.chat import load_processing
    from axo.data.prepare import prepare
    from axo.train.args import to_training_args

    cfg = make_config(sample_packing=True, sequence_len=1024, micro_batch_size=2)
    text = load_processing(cfg)
    inputs = trainer_inputs(cfg, prepare(cfg, text.tokenizer, text.chat), text)
    assert inputs.rows_per_sequence > 1 and inputs.stats["pack_length"] == 1024 // inputs.rows_per_sequence
    args = to_training_args(cfg, "fp32", has_eval=False, rows_per_sequence=inputs.rows_per_sequence)
    split, length = inputs.rows_per_sequence, inputs.stats["pack_length"]
    assert args.per_device_train_batch_size == 2 * split  # the same capacity per step, less the rounding
    assert 2 * 1024 - 2 * split < args.per_device_train_batch_size * length <= 2 * 1024
    # pad_to_sequence_len keeps one constant shape: every micro-batch [2 x split, pack length]
    cfg = make_config(sample_packing=True, sequence_len=1024, micro_batch_size=2, pad_to_sequence_len=True)
    inputs = trainer_inputs(cfg, prepare(cfg, text.tokenizer, text.chat), text)
    batch = inputs.collator([inputs.train[i] for i in range(2 * split)])
    assert inputs.rows_per_sequence == split and tuple(batch["input_ids"].shape) == (2 * split, length)


def test_the_pack_length_fits_the_eval_rows_too(make_config, tmp_path):
    """Eval packs share the chosen length, so a long eval row keeps the train packs long enough."""
    import json

    from axo.data.batches import trainer_inputs
    from axo.data.chat import load_processing
    from axo.data.prepare import prepare

    short = [{"instruction": "Sort: 2 1", "input": "", "output": "1 2"}] * 32
    long = [{"instruction": "Sort: " + " ".join("9" * 1 for _ in range(300)), "input": "", "output": "9"}] * 4
    for name, rows in (("train", short), ("test", long)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = make_config(sample_packing=True, sequence_len=1024, datasets=[{"path": str(tmp_path / "train.jsonl"),
                      "type": "alpaca"}], test_datasets=[{"path": str(tmp_path / "test.jsonl"), "type": "alpaca"}])
    text = load_processing(cfg)
    data = prepare(cfg, text.tokenizer, text.chat)
    inputs = trainer_inputs(cfg, data, text)
    assert inputs.stats["pack_length"] >= max(data.eval["length"]) and len(inputs.eval) > 0
