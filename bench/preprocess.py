"""Preprocessing throughput: 100k short chat rows through axo's chat_template pipeline with 1 and
2 processes, against a baseline in the same run: transformers' `apply_chat_template(tokenize=True)`
over the same rows with `datasets.map` (tokens only, no label masks).

    .venv/bin/python bench/preprocess.py [--rows 100000]

Prints rows/s for each and the ratios. Results go in bench/RESULTS.md.
"""

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_rows(n: int, path: Path) -> None:
    rng = random.Random(0)
    with open(path, "w") as f:
        for _ in range(n):
            digits = " ".join(str(rng.randint(0, 9)) for _ in range(rng.randint(3, 8)))
            messages = [{"role": "user", "content": f"Sort the digits: {digits}"},
                        {"role": "assistant", "content": " ".join(sorted(digits.split()))}]
            if rng.random() < 0.3:
                messages = [{"role": "system", "content": "You sort digits."}] + messages
            f.write(json.dumps({"messages": messages}) + "\n")


def axo_rows_per_second(path: Path, workdir: Path, processes: int) -> float:
    from axo.config import validate
    from axo.data.prepare import prepare
    from axo.model.loader import load_tokenizer

    cfg = validate({
        "base_model": str(REPO / "examples" / "tiny-llama"), "chat_template": "chatml",
        "datasets": [{"path": str(path), "type": "chat_template"}], "sequence_len": 256,
        "dataset_processes": processes, "dataset_prepared_path": str(workdir / f"cache-{processes}"),
        "output_dir": str(workdir / "out"),
    })
    tokenizer = load_tokenizer(cfg)
    start = time.perf_counter()
    out = prepare(cfg, tokenizer)
    elapsed = time.perf_counter() - start
    assert not out.cache_hit and len(out.train) > 0
    return out.stats[0]["rows_in"] / elapsed


def baseline_rows_per_second(path: Path) -> float:
    import datasets
    from transformers import AutoTokenizer

    from axo.data.templates import CHATML

    tokenizer = AutoTokenizer.from_pretrained(REPO / "examples" / "tiny-llama")
    rows = datasets.load_dataset("json", data_files=str(path), split="train")
    start = time.perf_counter()
    rows.map(lambda r: {"input_ids": tokenizer.apply_chat_template(r["messages"], chat_template=CHATML,
                                                                   tokenize=True, return_dict=False)},
             remove_columns=["messages"], load_from_cache_file=False)
    return len(rows) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from axo.logs import setup_logging

    setup_logging()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path = workdir / "chat.jsonl"
        make_rows(args.rows, path)
        baseline = baseline_rows_per_second(path)
        one = axo_rows_per_second(path, workdir, 1)
        two = axo_rows_per_second(path, workdir, 2)
    print(f"\n{args.rows:,} chat rows (ChatML, 2-3 turns), tiny-llama tokenizer")
    print(f"baseline apply_chat_template(tokenize=True), no masks: {baseline:8.0f} rows/s")
    print(f"axo chat_template, 1 process:                          {one:8.0f} rows/s  ({one / baseline:.2f}x baseline)")
    print(f"axo chat_template, 2 processes:                        {two:8.0f} rows/s  ({two / baseline:.2f}x baseline, "
          f"{two / one:.2f}x 1 process)")


if __name__ == "__main__":
    main()
