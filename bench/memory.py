"""Peak memory of a full fine-tune, LoRA and QLoRA on a ~50M-parameter Llama on CPU.

    .venv/bin/python bench/memory.py [--steps 3]

Each run is its own process (train a few steps through `axo.train.sft.train`) and reports its peak
resident memory; a baseline process that imports the same libraries and loads nothing is
subtracted, so the numbers are what training itself costs. Ratios are against the full fine-tune.
Results go in bench/RESULTS.md.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODES = {
    "full": {},
    "lora": {"adapter": "lora", "lora_r": 16, "lora_target_linear": True},
    "qlora": {"adapter": "qlora", "load_in_4bit": True, "lora_r": 16, "lora_target_linear": True},
}


def build(folder: Path) -> int:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(REPO / "examples" / "tiny-llama" / name, folder / name)
    config = AutoConfig.from_pretrained(REPO / "examples" / "tiny-llama")
    config.update({"hidden_size": 640, "intermediate_size": 1728, "num_hidden_layers": 13,
                   "num_attention_heads": 10, "num_key_value_heads": 5, "max_position_embeddings": 512})
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def child(mode: str, model: str, data: str, out: str, steps: int) -> None:
    sys.path.insert(0, str(REPO / "src"))
    from axo.config import validate
    from axo.logs import setup_logging
    from axo.train.sft import train

    setup_logging()
    peaks = {}
    if mode != "baseline":
        from transformers import TrainerCallback

        class TrainingPeak(TrainerCallback):
            """Peak resident memory of the training loop alone: loading is over by on_train_begin."""

            def on_train_begin(self, args, state, control, **kwargs):
                peaks["load_mb"] = _status("VmHWM")
                Path("/proc/self/clear_refs").write_text("5")  # restart the peak (Linux)

            def on_train_end(self, args, state, control, **kwargs):
                peaks["train_mb"] = _status("VmHWM")
                peaks.update(_tensor_mb(kwargs["model"], kwargs["optimizer"]))

        cfg = validate({"base_model": model, "datasets": [{"path": data, "type": "alpaca"}], "output_dir": out,
                        "sequence_len": 256, "micro_batch_size": 4, "max_steps": steps, "save_steps": 10_000,
                        "learning_rate": 1e-4, **MODES[mode]})
        train(cfg, callbacks=[TrainingPeak()])
    else:
        import peft  # noqa: F401  the same libraries, nothing loaded
        import transformers  # noqa: F401

        peaks = {"load_mb": _status("VmHWM"), "train_mb": _status("VmHWM")}
    print(json.dumps(peaks))


def _tensor_mb(model, optimizer) -> dict:
    """Bytes held by the training state's tensors: weights (as stored: 4-bit ones are packed),
    gradients and optimizer state. Unlike resident memory, freed buffers do not count."""
    def mb(tensors):
        return sum(t.numel() * t.element_size() for t in tensors) / 2**20

    params = list(model.parameters())
    states = [v for s in optimizer.state.values() for v in s.values() if hasattr(v, "element_size")]
    # gradients exist only inside a step; each trainable parameter gets one of its own size
    return {"weights_mb": mb(params), "grads_mb": mb(p for p in params if p.requires_grad),
            "optimizer_mb": mb(states)}


def _status(field: str) -> float:
    """A memory figure of this process from /proc, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--child", nargs=4, metavar=("MODE", "MODEL", "DATA", "OUT"))
    args = parser.parse_args()
    if args.child:
        return child(*args.child, args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "model").mkdir()
        params = build(tmp / "model")
        data = REPO / "examples" / "data" / "sort_train.jsonl"
        peaks = {}
        for mode in ["baseline", *MODES]:
            run = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--child", mode,
                                  str(tmp / "model"), str(data), str(tmp / mode)], capture_output=True, text=True)
            if run.returncode:
                sys.exit(f"{mode} failed:\n{run.stderr[-3000:]}")
            peaks[mode] = json.loads(run.stdout.strip().splitlines()[-1])
    base = peaks.pop("baseline")["load_mb"]
    full = peaks["full"]["train_mb"] - base
    print(f"\n{params / 1e6:.1f}M-parameter Llama, fp32, sequence_len 256, batch 4, {args.steps} steps, CPU")
    print(f"baseline process (libraries imported, nothing loaded): {base:.0f} MB")
    state_full = sum(peaks["full"][k] for k in ("weights_mb", "grads_mb", "optimizer_mb"))
    for mode, m in peaks.items():
        trained = m["train_mb"] - base
        state = m["weights_mb"] + m["grads_mb"] + m["optimizer_mb"]
        print(f"{mode:6s} training state {state:6.0f} MB ({state / state_full:.2f}x full: weights "
              f"{m['weights_mb']:.0f}, grads {m['grads_mb']:.0f}, optimizer {m['optimizer_mb']:.0f})   "
              f"resident peak while training +{trained:5.0f} MB ({trained / full:.2f}x full)")

if __name__ == "__main__":
    main()
