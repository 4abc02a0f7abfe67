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
        return {
            "input_ids": [t for ids in part["input_ids"] for t in ids],
            "labels": [t for labels in part["labels"] for t in labels],
            "position_ids": [p for ids in part["input_ids"] for p in range(len(ids))],
        }

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


def trainer_datasets(cfg, data) -> tuple[object, object, dict]:
    """(train, eval, stats) as the Trainer gets them: packed where the config says so."""
    d = cfg.data
    train, ev, stats = data.train, data.eval, {}
    if d.sample_packing and not d.pretraining_dataset:  # streamed blocks are packed as they stream
        train = pack(train, d.sequence_len, d.sample_packing_sequentially, "train")
        stats["packing_efficiency"] = train.efficiency
    if ev is not None and d.pack_eval:
        ev = pack(ev, d.sequence_len, d.sample_packing_sequentially, "eval")
        stats["eval_packing_efficiency"] = ev.efficiency
    return train, ev, stats
