"""Sample packing: many tokenized rows per sequence of `sequence_len` tokens.

Rows are assigned to bins by first-fit-decreasing (or next-fit, keeping their order, with
`sample_packing_sequentially`), compiled with numba: a million rows pack in well under a second.
A pack keeps each row's own position_ids (restarting at 0), which is how transformers tells the
rows apart: with position_ids and no attention_mask it builds a block-diagonal causal mask for
sdpa, eager and flex attention, and cu_seqlens for flash-attention varlen.
"""

import logging
from dataclasses import dataclass

import numpy as np
from numba import njit

log = logging.getLogger("axo")


@njit(cache=True)
def _first_fit_decreasing(sizes, capacity):
    """Bin of each item (sizes sorted in decreasing order). A max-segment-tree over the bins'
    free space finds the first bin with room in O(log n)."""
    n = sizes.shape[0]
    leaves = 1
    while leaves < n:
        leaves *= 2
    free = np.zeros(2 * leaves, np.int64)
    free[leaves:leaves + n] = capacity
    for node in range(leaves - 1, 0, -1):
        free[node] = max(free[2 * node], free[2 * node + 1])
    assign = np.empty(n, np.int64)
    for i in range(n):
        node = 1
        while node < leaves:
            node = 2 * node if free[2 * node] >= sizes[i] else 2 * node + 1
        assign[i] = node - leaves
        free[node] -= sizes[i]
        node //= 2
        while node >= 1:
            free[node] = max(free[2 * node], free[2 * node + 1])
            node //= 2
    return assign


@njit(cache=True)
def _next_fit(sizes, capacity):
    assign = np.empty(sizes.shape[0], np.int64)
    current, used = 0, 0
    for i in range(sizes.shape[0]):
        if used + sizes[i] > capacity:
            current += 1
            used = 0
        assign[i] = current
        used += sizes[i]
    return assign


def pack_bins(lengths: np.ndarray, capacity: int, sequential: bool = False) -> list[np.ndarray]:
    """Row indices of each bin; every bin's lengths sum to at most `capacity`."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(lengths) == 0:
        return []
    if lengths.max() > capacity:
        raise ValueError(f"a row of {lengths.max()} tokens cannot fit a bin of {capacity}")
    if sequential:
        order = np.arange(len(lengths))
        assign = _next_fit(lengths, capacity)
    else:
        order = np.argsort(-lengths, kind="stable")
        assign = _first_fit_decreasing(lengths[order], capacity)
    by_bin = np.argsort(assign, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(assign[by_bin]) != 0])
    return np.split(order[by_bin], starts[1:])


@dataclass
class PackedRows:
    """A torch-style dataset whose items are packs of rows of a tokenized `datasets.Dataset`."""

    rows: object
    bins: list[np.ndarray]
    capacity: int
    lengths: np.ndarray  # tokens of each row of `rows`

    def __len__(self) -> int:
        return len(self.bins)

    def __getitem__(self, i: int) -> dict:
        part = self.rows[self.bins[i].tolist()]
        if "input_ids" not in part:  # multimodal rows stay raw until their processor batches them
            return {"pack": [dict(zip(part, values)) for values in zip(*part.values())]}
        # per-token columns joined like the tokens (KD rows carry the teacher's candidates per token)
        joined = [c for c in ("input_ids", "labels", "teacher_ids", "teacher_scores") if c in part]
        return {**{c: [v for row in part[c] for v in row] for c in joined},
                "position_ids": [p for ids in part["input_ids"] for p in range(len(ids))]}

    @property
    def efficiency(self) -> float:
        """Share of the packs' token slots holding real tokens."""
        return float(self.lengths.sum()) / max(1, len(self.bins) * self.capacity)


def pack(rows, capacity: int, sequential: bool, name: str) -> PackedRows:
    lengths = np.asarray(rows["length"], dtype=np.int64)
    packed = PackedRows(rows, pack_bins(lengths, capacity, sequential), capacity, lengths)
    log.info("Packed %s: %d rows into %d sequences of %d tokens, %.1f%% of token slots used",
             name, len(rows), len(packed), capacity, 100 * packed.efficiency)
    return packed


def packs_per_sequence(lengths, sequence_len: int, span: float, sequential: bool = False) -> int:
    """How many packs each `sequence_len` of a micro-batch is cut into, for backends that attend over
    whole packs: sdpa, eager and flex build one mask per pack and compute all of it, so a pack of c
    slots costs about c * (1 + c / span) (attention_span), whatever rows it holds.
    Shorter packs cost less attention but may waste more slots; the cheapest cut that still fits
    the longest row wins. The micro-batch then holds that many times more packs, so the tokens of
    a step stay what the config says."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(lengths) == 0:
        return 1
    if len(lengths) > 200_000:  # the length distribution is what matters; a sample of it decides as well
        lengths = np.random.default_rng(0).choice(lengths, 200_000, replace=False)

    if not sequential:
        lengths = np.sort(lengths)[::-1].copy()  # first-fit-decreasing's order, sorted once

    def cost(k: int) -> float:
        c = sequence_len // k
        return _bin_count(lengths, c, sequential) * c * (1 + c / span)

    most = sequence_len // int(lengths.max())
    # every cut up to 8, then doublings: the cost is flat where cuts are many, and each try packs all rows
    cuts = sorted({k for k in range(1, min(most, 8) + 1)} | {2 ** i for i in range(3, most.bit_length()) if 2 ** i <= most})
    return min(cuts, key=cost)


def attention_span(config) -> float:
    """The context length at which a token's attention (computed over the whole pack: 4 * c * hidden
    FLOPs per layer) costs as much as the rest of its forward pass (2 FLOPs per weight of the layers
    and of the output head)."""
    config = getattr(config, "text_config", None) or config
    h, layers = config.hidden_size, config.num_hidden_layers
    head_dim = getattr(config, "head_dim", None) or h // config.num_attention_heads
    kv = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    inner = getattr(config, "intermediate_size", None) or 4 * h
    per_layer = 2 * h * config.num_attention_heads * head_dim + 2 * h * kv * head_dim + 3 * h * inner
    return (layers * per_layer + config.vocab_size * h) / (2 * h * layers)


def _bin_count(lengths: np.ndarray, capacity: int, sequential: bool) -> int:
    """Packs the rows fill: next-fit in their order, or first-fit over lengths already sorted decreasing."""
    assign = _next_fit(lengths, capacity) if sequential else _first_fit_decreasing(lengths, capacity)
    return int(assign.max()) + 1


def trainer_datasets(cfg, data, split: int = 1) -> tuple[object, object, dict]:
    """(train, eval, stats) as the Trainer gets them: packed where the config says so, each
    sequence_len cut into `split` packs (packs_per_sequence)."""
    d = cfg.data
    train, ev, stats = data.train, data.eval, {}
    capacity = d.sequence_len // split
    if d.sample_packing and not d.pretraining_dataset:  # streamed blocks are packed as they stream
        train = pack(train, capacity, d.sample_packing_sequentially, "train")
        stats.update(packing_efficiency=train.efficiency, pack_length=capacity, packs_per_sequence=split)
    if ev is not None and d.pack_eval:
        ev = pack(ev, capacity, d.sample_packing_sequentially, "eval")
        stats["eval_packing_efficiency"] = ev.efficiency
    return train, ev, stats
