"""Trained tokens per second with packing, against TRL's SFTTrainer on the same model and rows,
in one run on this machine:

  - axo, `sample_packing: true` (first-fit-decreasing packs of sequence_len tokens);
  - TRL SFTTrainer, default padding (batches padded to their longest row);
  - TRL SFTTrainer, `packing=True` (its best-fit-decreasing packing, position_ids, padding-free).

    .venv/bin/python bench/packing.py [--rows 1500] [--seq-len 2048]

Rows are pre-tokenized, lengths drawn from a lognormal clipped to 20-2000 tokens, every token
trained. Each system trains one epoch over the same rows from the same initial weights, in fp32,
with about the same number of real tokens per optimizer step. Results go in bench/RESULTS.md.
"""

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def make_model(folder: Path, seq_len: int) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(REPO / "examples" / "tiny-llama" / name, folder / name)
    config = AutoConfig.from_pretrained(REPO / "examples" / "tiny-llama")
    config.update({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                   "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": seq_len})
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)


def make_rows(n: int, vocab: int, path: Path) -> np.ndarray:
    rng = np.random.default_rng(0)
    lengths = np.clip(rng.lognormal(mean=5.3, sigma=0.9, size=n), 20, 2000).astype(int)
    with open(path, "w") as f:
        for n_tokens in lengths:
            f.write(json.dumps({"input_ids": rng.integers(3, vocab, n_tokens).tolist()}) + "\n")
    return lengths


def run_axo(model_dir: Path, data: Path, out: Path, seq_len: int) -> dict:
    from axo.config import validate
    from axo.train.sft import train

    cfg = validate({
        "base_model": str(model_dir), "datasets": [{"path": str(data)}], "output_dir": str(out),
        "sequence_len": seq_len, "sample_packing": True, "micro_batch_size": 1, "num_epochs": 1,
        "learning_rate": 1e-4, "logging_steps": 50, "save_steps": 100000,
    })
    return train(cfg)


def run_trl(model_dir: Path, data: Path, out: Path, seq_len: int, packing: bool, batch: int) -> dict:
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    rows = datasets.load_dataset("json", data_files=str(data), split="train")
    args = SFTConfig(
        output_dir=str(out), max_length=seq_len, packing=packing, per_device_train_batch_size=batch,
        num_train_epochs=1, learning_rate=1e-4, logging_steps=50, save_strategy="no", report_to="none",
        bf16=False, fp16=False, use_cpu=True, dataloader_pin_memory=False, seed=42,
    )
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(model_dir), args=args, train_dataset=rows,
                         processing_class=AutoTokenizer.from_pretrained(model_dir))
    return trainer.train().metrics


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1500)
    parser.add_argument("--seq-len", type=int, default=2048)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from axo.logs import setup_logging

    setup_logging()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = tmp / "model"
        model_dir.mkdir()
        make_model(model_dir, args.seq_len)
        data = tmp / "rows.jsonl"
        lengths = make_rows(args.rows, 373, data)
        tokens = int(lengths.sum())
        padded_batch = max(1, round(args.seq_len / lengths.mean()))  # ~ the real tokens of one pack
        results = {
            "axo, sample_packing": run_axo(model_dir, data, tmp / "axo", args.seq_len)["train_runtime"],
            f"TRL SFTTrainer, padding (batch {padded_batch})":
                run_trl(model_dir, data, tmp / "trl-pad", args.seq_len, False, padded_batch)["train_runtime"],
            "TRL SFTTrainer, packing=True": run_trl(model_dir, data, tmp / "trl-pack", args.seq_len, True, 1)["train_runtime"],
        }
    print(f"\n{args.rows:,} rows, {tokens:,} tokens (lengths lognormal 20-2000, mean {lengths.mean():.0f}), "
          f"sequence_len {args.seq_len}, one epoch, fp32, CPU")
    axo = tokens / results["axo, sample_packing"]
    for name, seconds in results.items():
        rate = tokens / seconds
        print(f"{name:42s} {rate:9.0f} tokens/s  {seconds:7.1f} s   axo is {axo / rate:.2f}x")


if __name__ == "__main__":
    main()
