"""Does QAT keep more accuracy through quantization than quantizing afterwards? On the digit
task (held-out exact match), for each seed, two trainings of the same model on the same data:

  - baseline: examples/tiny.yml, then post-training quantization with the same scheme;
  - QAT: examples/qat.yml (the same config plus its `qat:` block), quantized at the end.

    .venv/bin/python bench/qat.py [--seeds 0 1 2] [--weight-dtype int4] [--group-size 32 | 0]

Each model is scored before and after quantization with `axo evaluate --exact-match` (greedy
answers, end token included). Results go in bench/RESULTS.md.
"""

import argparse
import json
import os
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def config(example: str, seed: int, scheme: dict, qat: bool, out: Path):
    from axo.config import validate

    raw = yaml.safe_load((REPO / "examples" / example).read_text())
    raw.update(seed=seed, output_dir=str(out))
    raw.pop("qat", None)
    if qat:
        raw["qat"] = {**scheme, "fake_quant_after_n_steps": yaml.safe_load(
            (REPO / "examples" / "qat.yml").read_text())["qat"]["fake_quant_after_n_steps"]}
    else:
        raw["quantization"] = scheme
    return validate(raw)


def run(seed: int, scheme: dict, qat: bool, out: Path) -> dict:
    from axo.train.evaluate import evaluate
    from axo.train.sft import train

    cfg = config("qat.yml" if qat else "tiny.yml", seed, scheme, qat, out)
    train(cfg)
    full = evaluate(cfg, exact_match=True)["exact_match"]
    quantized = evaluate(cfg, checkpoint=str(out / "quantized"), exact_match=True)["exact_match"]
    return {"seed": seed, "qat": qat, "full_precision": full, "quantized": quantized, "drop": full - quantized}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--weight-dtype", default="int4")
    parser.add_argument("--group-size", type=int, default=32, help="0: one scale per output row")
    parser.add_argument("--out", default=str(REPO / "outputs" / "bench-qat"))
    args = parser.parse_args()
    os.chdir(REPO)  # the example configs' paths are relative to the repository
    scheme = {"weight_dtype": args.weight_dtype, "group_size": args.group_size or None}
    results = []
    for seed in args.seeds:
        for qat in (False, True):
            name = f"{args.weight_dtype}-g{args.group_size}-seed{seed}-{'qat' if qat else 'ptq'}"
            result = run(seed, scheme, qat, Path(args.out) / name)
            results.append(result)
            print(json.dumps(result), flush=True)

    print(f"\nscheme: {scheme}\n")
    print("| seed | training | full precision | quantized | drop |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['seed']} | {'QAT' if r['qat'] else 'no QAT (PTQ)'} | {r['full_precision']:.3f} | "
              f"{r['quantized']:.3f} | {r['drop']:+.3f} |")
    ptq = [r for r in results if not r["qat"]]
    qat = [r for r in results if r["qat"]]
    better = sum(q["quantized"] > p["quantized"] for p, q in zip(ptq, qat))
    mean = lambda rows, key: sum(r[key] for r in rows) / len(rows)  # noqa: E731
    print(f"\nmean quantized exact match: QAT {mean(qat, 'quantized'):.3f} vs PTQ {mean(ptq, 'quantized'):.3f}; "
          f"mean drop QAT {mean(qat, 'drop'):+.3f} vs PTQ {mean(ptq, 'drop'):+.3f}; "
          f"QAT's quantized model is better on {better}/{len(ptq)} seeds")


if __name__ == "__main__":
    main()
