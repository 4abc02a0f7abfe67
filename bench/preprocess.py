"""Preprocessing throughput: 100k short chat rows through axo's chat_template pipeline with 1 and
2 processes, against a baseline in the same run: transformers' `apply_chat_template(tokenize=True)`
over the same rows with `datasets.map` (tokens only, no label masks).

    .venv/bin/python bench/preprocess.py [--rows 100000] [--tokenizer FOLDER]

--tokenizer: another tokenizer folder than tiny-llama's, e.g. the real Qwen2 one `make setup` builds
(.venv/axo-real-tokenizers/qwen2, 151k tokens), where the fixed costs of a large vocabulary show.

Prints rows/s for each and the ratios, and for axo the CPU seconds per 1,000 rows (this process and
its children), which another load on the machine moves far less than wall time. Results go in
bench/RESULTS.md.
"""

import argparse
import json
import random
import resource
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


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def axo_rows_per_second(path: Path, workdir: Path, processes: int, tokenizer_folder: Path) -> tuple[float, float]:
    """(rows/s, CPU seconds per 1,000 rows)."""
    from axo.config import validate
    from axo.data.prepare import prepare
    from axo.model.loader import load_tokenizer

    cfg = validate({
        "base_model": str(REPO / "examples" / "tiny-llama"), "tokenizer_config": str(tokenizer_folder),
        "chat_template": "chatml",
        "datasets": [{"path": str(path), "type": "chat_template"}], "sequence_len": 256,
        "dataset_processes": processes, "dataset_prepared_path": str(workdir / f"cache-{processes}"),
        "output_dir": str(workdir / "out"),
    })
    tokenizer = load_tokenizer(cfg)
    start, cpu = time.perf_counter(), cpu_seconds()
    out = prepare(cfg, tokenizer)
    elapsed, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    assert not out.cache_hit and len(out.train) > 0
    rows = out.stats[0]["rows_in"]
    return rows / elapsed, 1000 * cpu / rows


def baseline_rows_per_second(path: Path, tokenizer_folder: Path) -> float:
    import datasets
    from transformers import AutoTokenizer

    from axo.data.templates import CHATML

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    rows = datasets.load_dataset("json", data_files=str(path), split="train")
    start = time.perf_counter()
    rows.map(lambda r: {"input_ids": tokenizer.apply_chat_template(r["messages"], chat_template=CHATML,
                                                                   tokenize=True, return_dict=False)},
             remove_columns=["messages"], load_from_cache_file=False)
    return len(rows) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--tokenizer", type=Path, default=REPO / "examples" / "tiny-llama")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    from axo.logs import setup_logging

    setup_logging()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        path = workdir / "chat.jsonl"
        make_rows(args.rows, path)
        baseline = baseline_rows_per_second(path, args.tokenizer)
        (one, one_cpu), (two, two_cpu) = (axo_rows_per_second(path, workdir, n, args.tokenizer) for n in (1, 2))
    print(f"\n{args.rows:,} chat rows (ChatML, 2-3 turns), tokenizer {args.tokenizer.name}")
    print(f"baseline apply_chat_template(tokenize=True), no masks: {baseline:8.0f} rows/s")
    print(f"axo chat_template, 1 process:                          {one:8.0f} rows/s  ({one / baseline:.2f}x baseline)"
          f"  {one_cpu:.2f} CPU s / 1k rows")
    print(f"axo chat_template, 2 processes:                        {two:8.0f} rows/s  ({two / baseline:.2f}x baseline, "
          f"{two / one:.2f}x 1 process)  {two_cpu:.2f} CPU s / 1k rows")


if __name__ == "__main__":
    main()
