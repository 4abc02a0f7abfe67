"""Does packing pay against axo's own unpacked path? Real (non-padding) tokens per second of training
steps over the same rows, on one machine, in one run:

  - unpacked: micro-batches of rows padded to their longest, in random order (the Trainer's
    sampler), and with `group_by_length: true` (similar lengths together: less padding);
  - packed to `sequence_len` (what `sample_packing: true` did before axo chose the pack length);
  - packed as axo packs them for a backend that attends over whole packs (sdpa): each sequence_len
    cut into the packs_per_sequence that cost least for this model and these rows
    (data/packing.py), micro-batches holding as many more packs, so the tokens of a step stay the same.

    .venv/bin/python bench/packing_vs_unpacked.py [--rows 160] [--seq-len 2048] [--hidden 384] [--layers 4] [--vocab 32000]

The default model is a Llama with realistic proportions for its size (vocab 32000, hidden 384,
4 layers, 34M parameters); `--hidden 64 --layers 2 --vocab 256` is the toy test model, where
attention is most of the cost. fp32, sdpa (the CPU backend). Each row of the table is forward +
backward + an AdamW step over every row once, after one warm-up step; about the same real tokens per
step for all (~4k). Row lengths: lognormal, median ~210, clipped to sequence_len / 2. Results go in
bench/RESULTS.md.
"""

import argparse
import time

import numpy as np
import torch


def make_model(hidden: int, layers: int, vocab: int, seq_len: int, attn: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=layers,
                         num_attention_heads=hidden // 64, num_key_value_heads=hidden // 64,
                         max_position_embeddings=seq_len, use_cache=False)
    return LlamaForCausalLM._from_config(config, attn_implementation=attn).train()


def make_rows(n: int, seq_len: int, vocab: int) -> list[dict]:
    rng = np.random.default_rng(0)
    lengths = np.clip(rng.lognormal(mean=5.3, sigma=0.8, size=n), 16, seq_len).astype(int)
    return [{"input_ids": (ids := rng.integers(3, vocab, k).tolist()), "labels": ids, "length": k} for k in lengths]


def batches_unpacked(rows, per_step_tokens: int, grouped: bool = False):
    """Random micro-batches (the Trainer's default sampler), or `group_by_length: true`'s (transformers'
    LengthGroupedSampler: rows of similar length together, less padding)."""
    from transformers.trainer_pt_utils import get_length_grouped_indices

    from axo.data.collator import Collator

    mean = np.mean([r["length"] for r in rows])
    size = max(1, int(per_step_tokens / mean))
    if grouped:
        order = get_length_grouped_indices([r["length"] for r in rows], size, generator=torch.Generator().manual_seed(1))
    else:
        order = np.random.default_rng(1).permutation(len(rows))
    collate = Collator(0)
    return [collate([rows[i] for i in order[s:s + size]]) for s in range(0, len(rows), size)]


def batches_packed(rows, capacity: int, per_step_tokens: int):
    from datasets import Dataset

    from axo.data.collator import Collator
    from axo.data.packing import pack

    dataset = Dataset.from_list(rows)
    packed = pack(dataset, capacity, sequential=False, name=f"bench ({capacity})")
    size = max(1, per_step_tokens // capacity)
    order = np.random.default_rng(1).permutation(len(packed))
    collate = Collator(0)
    return [collate([packed[int(i)] for i in order[s:s + size]]) for s in range(0, len(packed), size)], packed.efficiency


def tokens_per_second(model, batches) -> float:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    real = 0
    start = None
    for i, batch in enumerate(batches):
        if i == 1:
            start = time.perf_counter()  # after one warm-up step
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if i >= 1:
            real += int((batch["labels"] != -100).sum()) + len(batch["labels"])  # + the first token of each row
    return real / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=160)
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--tokens-per-step", type=int, default=4096)
    args = parser.parse_args()
    torch.manual_seed(0)
    from axo.data.packing import attention_span, packs_per_sequence

    rows = make_rows(args.rows, args.seq_len // 2, args.vocab)
    lengths = np.array([r["length"] for r in rows])
    model = make_model(args.hidden, args.layers, args.vocab, args.seq_len, "sdpa")
    span = attention_span(model.config)
    chosen = args.seq_len // packs_per_sequence(lengths, args.seq_len, span)
    print(f"{len(rows)} rows, {lengths.sum():,} tokens, lengths p50 {int(np.median(lengths))} "
          f"p95 {int(np.percentile(lengths, 95))} max {lengths.max()}; sequence_len {args.seq_len}, "
          f"attention span {span:,.0f} tokens, chosen pack length {chosen}")
    results = {}
    print(f"model: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, sdpa, fp32", flush=True)
    results["unpacked"] = tokens_per_second(model, batches_unpacked(rows, args.tokens_per_step))
    results["unpacked, `group_by_length: true`"] = tokens_per_second(
        model, batches_unpacked(rows, args.tokens_per_step, grouped=True))
    for label, capacity in ((f"packed to sequence_len ({args.seq_len})", args.seq_len),
                            (f"packed to the chosen length ({chosen})", chosen)):
        batches, efficiency = batches_packed(rows, capacity, args.tokens_per_step)
        results[f"{label}, {efficiency:.1%} full"] = tokens_per_second(model, batches)
    base = results["unpacked"]
    print("| run | real tokens/s | vs unpacked |\n|---|---|---|")
    for label, value in results.items():
        print(f"| {label} | {value:,.0f} | {value / base:.2f}x |")


if __name__ == "__main__":
    main()
