"""axo against TRL's SFTTrainer on a real model: SmolLM2-135M-Instruct (`make setup` fetches it), LoRA
on every linear layer (r 16), the same chat rows through the model's own ChatML template, the answers
trained and the prompts masked, fp32, on this machine, in one script:

  - training: the same rows for one epoch, the same micro-batch, each system in its own process:
    time from the process's start to the end of the first step, the rows' tokens per second over
    the epoch, and the process's peak RSS; unpacked (padded batches) and packed (axo
    `sample_packing`, TRL `packing=True`, its padding-free best-fit packing);
  - preparation: the same rows tokenized and masked by each (axo's `prepare`, TRL's SFTTrainer
    dataset processing), rows per second.

    .venv/bin/python bench/real_model.py [--rows 96] [--prep-rows 2000]

Rows: the quickstart's extraction task as conversations of one to four exchanges (real text, 100 to
400 tokens). Results go in bench/RESULTS.md with the command.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STARTED = time.monotonic()
REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "examples"), str(REPO / "src")]
LORA = {"r": 16, "alpha": 32, "targets": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}
BATCH, SEQ_LEN, LR = 4, 512, 5e-4


def smollm2() -> Path:
    """The SmolLM2 folder `make setup` dequantized from its GGUF: the same weights for both systems."""
    from axo.model.from_gguf import dequantized
    from fixtures.real_models import SMOLLM2, path

    return dequantized(path(SMOLLM2).resolve())


def make_rows(n: int, path: Path, seed: int = 0) -> None:
    """Conversations of 1-4 extraction exchanges (the quickstart's), each answer trained."""
    import random

    from make_extract_data import CITIES, NAMES, SHAPES, row

    rng = random.Random(seed)
    with open(path, "w") as f:
        for _ in range(n):
            messages = []
            for _ in range(rng.choice([1, 1, 2, 3, 4])):
                messages += row(rng.choice(NAMES), rng.randint(18, 90), rng.choice(CITIES), rng.choice(SHAPES))["messages"]
            f.write(json.dumps({"messages": messages}) + "\n")


def as_prompt_completion(path: Path, out: Path) -> None:
    """TRL's conversational prompt-completion rows: TRL masks the prompt, as axo masks all but answers.
    (One completion per row, the last answer: TRL trains the earlier answers of a multi-turn row as
    prompt. Each system runs the same tokens through the model; tokens/s counts those.)"""
    with open(path) as f, open(out, "w") as g:
        for line in f:
            m = json.loads(line)["messages"]
            g.write(json.dumps({"prompt": m[:-1], "completion": m[-1:]}) + "\n")


class FirstStep:
    """A TrainerCallback noting when the first optimizer step ended, from the process's start."""

    def __new__(cls):
        from transformers import TrainerCallback

        class _First(TrainerCallback):
            seconds = None

            def on_step_end(self, args, state, control, **kwargs):
                if self.seconds is None:
                    self.seconds = time.monotonic() - STARTED

        return _First()


def arm_axo(rows: Path, out: Path, packed: bool) -> dict:
    from axo.config import validate
    from axo.train.sft import train
    from fixtures.real_models import SMOLLM2, path

    first = FirstStep()
    cfg = validate({"base_model": str(path(SMOLLM2)), "datasets": [{"path": str(rows), "type": "chat_template"}],
                    "chat_template": "tokenizer_default", "sequence_len": SEQ_LEN, "sample_packing": packed,
                    "micro_batch_size": BATCH if not packed else 1, "num_epochs": 1, "learning_rate": LR,
                    "adapter": "lora", "lora_r": LORA["r"], "lora_alpha": LORA["alpha"], "lora_dropout": 0.0,
                    "lora_target_modules": LORA["targets"], "logging_steps": 5, "save_steps": 100000,
                    "output_dir": str(out), "seed": 0})
    metrics = train(cfg, callbacks=[first])
    return {"first_step_s": first.seconds, "train_runtime": metrics["train_runtime"]}


def arm_trl(rows: Path, out: Path, packed: bool) -> dict:
    import datasets
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    folder = smollm2()
    first = FirstStep()
    args = SFTConfig(output_dir=str(out), max_length=SEQ_LEN, packing=packed, per_device_train_batch_size=BATCH
                     if not packed else 1, num_train_epochs=1, learning_rate=LR, logging_steps=5, save_strategy="no",
                     report_to="none", bf16=False, fp16=False, use_cpu=True, dataloader_pin_memory=False, seed=0,
                     lr_scheduler_type="cosine", warmup_steps=0)
    peft = LoraConfig(r=LORA["r"], lora_alpha=LORA["alpha"], lora_dropout=0.0, target_modules=LORA["targets"],
                      task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(folder), args=args, peft_config=peft,
                         train_dataset=datasets.load_dataset("json", data_files=str(rows), split="train"),
                         processing_class=AutoTokenizer.from_pretrained(folder), callbacks=[first])
    metrics = trainer.train().metrics
    return {"first_step_s": first.seconds, "train_runtime": metrics["train_runtime"]}


def row_tokens(rows: Path) -> int:
    """Tokens of the rows as the template writes them: what each system runs through the model."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2())
    return sum(len(tokenizer(tokenizer.apply_chat_template(json.loads(line)["messages"], tokenize=False))["input_ids"])
               for line in open(rows))


def preparation(rows: Path) -> dict:
    """Rows per second of each system's tokenizing and masking (model loading not counted)."""
    import datasets
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from axo.config import validate
    from axo.data.chat import setup_chat
    from axo.data.prepare import prepare
    from axo.model.tokenizer import load_tokenizer
    from fixtures.real_models import SMOLLM2, path

    n = sum(1 for _ in open(rows))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = validate({"base_model": str(path(SMOLLM2)), "datasets": [{"path": str(rows), "type": "chat_template"}],
                        "chat_template": "tokenizer_default", "sequence_len": SEQ_LEN, "output_dir": tmp,
                        "dataset_processes": 1})
        tokenizer = load_tokenizer(cfg)
        chat = setup_chat(cfg, tokenizer)
        start = time.monotonic()
        prepare(cfg, tokenizer, chat)
        axo = time.monotonic() - start
        folder = smollm2()
        model = AutoModelForCausalLM.from_pretrained(folder)
        pc = Path(tmp) / "pc.jsonl"
        as_prompt_completion(rows, pc)
        data = datasets.load_dataset("json", data_files=str(pc), split="train")
        args = SFTConfig(output_dir=tmp, max_length=SEQ_LEN, report_to="none", use_cpu=True, dataset_num_proc=1)
        start = time.monotonic()
        SFTTrainer(model=model, args=args, train_dataset=data, processing_class=AutoTokenizer.from_pretrained(folder),
                   peft_config=LoraConfig(r=8, target_modules=["q_proj"], task_type="CAUSAL_LM"))
        trl = time.monotonic() - start  # (includes wrapping the model in peft: well under a second)
    return {"rows": n, "axo_rows_per_s": n / axo, "trl_rows_per_s": n / trl}


ARMS = {"axo, padded batches": (arm_axo, False), "TRL SFTTrainer, padded batches": (arm_trl, False),
        "axo, sample_packing": (arm_axo, True), "TRL SFTTrainer, packing=True": (arm_trl, True)}


def run_arm(name: str, rows: Path, out: Path) -> dict:
    """One arm in a fresh process, so its first-step time and peak RSS are its own."""
    done = subprocess.run([sys.executable, __file__, "--arm", name, "--data", str(rows), "--out", str(out)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=96)
    parser.add_argument("--prep-rows", type=int, default=2000)
    parser.add_argument("--arm")
    parser.add_argument("--data")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.arm:  # a child: train, print one JSON line
        fn, packed = ARMS[args.arm]
        rows = Path(args.data)
        if fn is arm_trl:
            as_prompt_completion(rows, rows.with_suffix(".pc.jsonl"))
            rows = rows.with_suffix(".pc.jsonl")
        result = fn(rows, Path(args.out), packed)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        rows = Path(tmp) / "rows.jsonl"
        make_rows(args.rows, rows)
        tokens = row_tokens(rows)
        results = {name: run_arm(name, rows, Path(tmp) / f"out{i}") for i, name in enumerate(ARMS)}
        prep_rows = Path(tmp) / "prep.jsonl"
        make_rows(args.prep_rows, prep_rows, seed=1)
        prep = preparation(prep_rows)
    print(f"\nSmolLM2-135M-Instruct, LoRA r {LORA['r']} on all linear layers, {args.rows} conversations "
          f"(1-4 exchanges), one epoch, micro-batch {BATCH} (packed: 1 pack of {SEQ_LEN}), fp32, this CPU")
    print(f"{'':34s} {'first step':>11s} {'tokens/s':>14s} {'peak RSS':>10s}")
    for name, r in results.items():
        r["tokens_per_s"] = tokens / r["train_runtime"]
        print(f"{name:34s} {r['first_step_s']:9.1f} s {r['tokens_per_s']:12.1f}   {r['peak_rss_mb']:7.0f} MB")
    for kind in ("padded batches", "packing"):
        ours = results["axo, " + ("sample_packing" if kind == "packing" else kind)]
        theirs = results["TRL SFTTrainer, " + ("packing=True" if kind == "packing" else kind)]
        print(f"axo / TRL, {kind}: tokens/s {ours['tokens_per_s'] / theirs['tokens_per_s']:.2f}x, "
              f"time to first step {ours['first_step_s'] / theirs['first_step_s']:.2f}x, "
              f"peak RSS {ours['peak_rss_mb'] / theirs['peak_rss_mb']:.2f}x")
    packed, padded = results["axo, sample_packing"], results["axo, padded batches"]
    print(f"axo packed / axo padded: tokens/s {packed['tokens_per_s'] / padded['tokens_per_s']:.2f}x")
    print(f"preparation of {prep['rows']} conversations with the SmolLM2 tokenizer: axo {prep['axo_rows_per_s']:.0f} "
          f"rows/s, TRL {prep['trl_rows_per_s']:.0f} rows/s ({prep['axo_rows_per_s'] / prep['trl_rows_per_s']:.2f}x)")


if __name__ == "__main__":
    main()
