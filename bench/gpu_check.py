"""Every check that needs a GPU, in one run: one line each, PASS / FAIL / SKIP (with the reason).
On a CPU the checks that can run there run (sdpa, bf16 math in software), the others say why not.

    bash bench/gpu_check.sh          # sets up the packages first (see that file)
    python bench/gpu_check.py [--only NAME ...]

Sized to finish within about 8 minutes on one H200."""

import argparse
import importlib.util
import sys
import time
import traceback

import torch

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
CHECKS = {}


class Skip(Exception):
    pass


def check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def needs(*modules: str, cuda: bool = True) -> None:
    if cuda and not CUDA:
        raise Skip("needs a CUDA GPU")
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise Skip(f"needs {', '.join(missing)} (carry its wheel: bench/gpu_wheels.sh)")


def tiny_llama(vocab=512, hidden=256, layers=4, attn="sdpa", dtype=torch.float32):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                         num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=4096, use_cache=False)
    model = LlamaForCausalLM._from_config(config, attn_implementation=attn, dtype=dtype)
    return model.to(DEVICE).train(), config


def rows(lengths, vocab=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in lengths:
        ids = torch.randint(1, vocab, (n,), generator=g).tolist()
        out.append({"input_ids": ids, "labels": [-100] * (n // 3) + ids[n // 3:]})
    return out


def loss_and_grads(model, batches):
    model.zero_grad()
    total = 0
    for batch in batches:
        batch = {k: v.to(DEVICE) for k, v in batch.items()}
        labels = batch.pop("labels")
        logits = model(**batch).logits.float()
        total = total + torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100,
            reduction="sum")
    total.backward()
    return total.detach(), {n: p.grad.float().clone() for n, p in model.named_parameters() if p.grad is not None}


def worst(a: dict, b: dict) -> float:
    return max(((a[k] - b[k]).norm() / b[k].norm().clamp_min(1e-12)).item() for k in b)


def rows_and_packs():
    """Eight rows of uneven length, as micro-batches of one row each and as two packs of four."""
    from axo.data.collator import Collator

    data = rows([37, 91, 12, 150, 64, 200, 31, 77])
    plain = [Collator(0)([r]) for r in data]
    packs = [{"input_ids": [t for r in data[i:i + 4] for t in r["input_ids"]],
              "labels": [t for r in data[i:i + 4] for t in r["labels"]],
              "position_ids": [p for r in data[i:i + 4] for p in range(len(r["input_ids"]))]} for i in (0, 4)]
    return plain, packs


@check
def packed_equals_unpacked_sdpa():
    """The collator's batches (flattened for varlen backends, [batch, width] otherwise) train exactly
    like the rows one by one."""
    from axo.data.collator import Collator

    model, _ = tiny_llama()
    plain, packs = rows_and_packs()
    loss_u, grads_u = loss_and_grads(model, plain)
    for flatten in (False, True):
        loss_p, grads_p = loss_and_grads(model, [Collator(0, flatten=flatten)(packs)])
        assert abs(loss_p / loss_u - 1) < 1e-5 and worst(grads_p, grads_u) < 1e-4, (flatten, loss_p, loss_u)
    return f"loss {loss_u.item():.4f}, flattened and batched packs within 1e-5"


@check
def flash_attention_packed_equals_unpacked():
    """flash_attention_2 with the collator's flattened micro-batch: rows do not see each other."""
    needs("flash_attn")
    from axo.data.collator import Collator

    model, _ = tiny_llama(attn="flash_attention_2", dtype=torch.bfloat16)
    plain, packs = rows_and_packs()
    loss_u, grads_u = loss_and_grads(model, plain)
    loss_p, grads_p = loss_and_grads(model, [Collator(0, flatten=True)(packs)])
    assert abs(loss_p / loss_u - 1) < 2e-2 and worst(grads_p, grads_u) < 5e-2, (loss_p, loss_u)
    return f"bf16: loss {loss_p.item():.3f} vs {loss_u.item():.3f}, worst gradient {worst(grads_p, grads_u):.1e}"


@check
def qlora_on_cuda_bitsandbytes():
    """QLoRA through axo's loader and adapter on CUDA bitsandbytes: the loss falls."""
    needs("bitsandbytes", "peft")
    import tempfile

    from axo.config import validate
    from axo.model.adapters import apply_adapter
    from axo.model.loader import load_model

    model, config = tiny_llama(hidden=512, layers=2)
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        cfg = validate({"base_model": folder, "datasets": [{"path": "x.jsonl", "type": "alpaca"}], "adapter": "qlora",
                        "load_in_4bit": True, "lora_target_linear": True, "reinit_weights": False})
        qmodel = apply_adapter(load_model(cfg, "bf16").to(DEVICE), cfg)
    optimizer = torch.optim.AdamW([p for p in qmodel.parameters() if p.requires_grad], lr=1e-3)
    batch = {k: torch.tensor([v]).to(DEVICE) for k, v in rows([256])[0].items()}
    losses = []
    for _ in range(30):
        loss = qmodel(input_ids=batch["input_ids"], labels=batch["labels"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
    return f"loss {losses[0]:.3f} -> {losses[-1]:.3f} in 30 steps"


@check
def cut_cross_entropy_equals_plain():
    needs("cut_cross_entropy")
    from cut_cross_entropy import linear_cross_entropy

    g = torch.Generator(device=DEVICE).manual_seed(0)
    hidden = torch.randn(512, 256, device=DEVICE, dtype=torch.bfloat16, generator=g, requires_grad=True)
    head = torch.randn(32000, 256, device=DEVICE, dtype=torch.bfloat16, generator=g, requires_grad=True)
    targets = torch.randint(0, 32000, (512,), device=DEVICE, generator=g)
    plain = torch.nn.functional.cross_entropy((hidden @ head.T).float(), targets)
    plain.backward()
    grads = hidden.grad.clone(), head.grad.clone()
    hidden.grad = head.grad = None
    cce = linear_cross_entropy(hidden, head, targets)
    cce.backward()
    assert abs(cce.item() / plain.item() - 1) < 1e-3
    err = max(((a.float() - b.float()).norm() / b.float().norm()).item() for a, b in zip((hidden.grad, head.grad), grads))
    assert err < 2e-2, err
    return f"loss {plain.item():.4f} vs {cce.item():.4f}, gradient error {err:.1e}"


@check
def bf16_follows_fp32():
    """The same 40 steps in fp32 and in bf16 autocast over fp32 master weights (axo's bf16): the loss
    curves stay within a few percent."""
    if not CUDA:
        raise Skip("bf16 math on a CPU runs 10-45x slower; tests/e2e/test_sft.py checks the master weights there")
    curves = {}
    batch = {k: torch.tensor([v]).to(DEVICE) for k, v in rows([512])[0].items()}
    for dtype in (torch.float32, torch.bfloat16):
        model, _ = tiny_llama()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        curve = []
        for _ in range(40):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                loss = model(input_ids=batch["input_ids"], labels=batch["labels"]).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            curve.append(loss.item())
        curves[dtype] = curve
    gap = max(abs(a - b) / a for a, b in zip(curves[torch.float32], curves[torch.bfloat16]))
    assert gap < 0.05, gap
    return f"largest relative gap over 40 steps {gap:.3f}"


@check
def throughput_and_mfu():
    """A ~0.5B Llama built from its config (no download): tokens/s and model-FLOPs utilisation of
    full fine-tuning steps in bf16 with sdpa, sequence 2048."""
    if not CUDA:
        raise Skip("a 0.5B model's steps take minutes on a CPU; this is the GPU figure")
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=32000, hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                         num_attention_heads=16, num_key_value_heads=8, max_position_embeddings=4096, use_cache=False)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(DEVICE, torch.float32).train()
    model.gradient_checkpointing_enable()
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    batch, seq = 8, 2048
    ids = torch.randint(0, 32000, (batch, seq), device=DEVICE)
    times = []
    for step in range(8):
        torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    step_time = sum(times[3:]) / len(times[3:])
    tokens = batch * seq / step_time
    flops = 6 * params * tokens + 12 * config.num_hidden_layers * config.hidden_size * seq * tokens
    peak = 989e12  # H200 dense bf16
    return (f"{params / 1e6:.0f}M parameters: {tokens:,.0f} tokens/s, MFU {flops / peak:.1%} "
            f"(with checkpointing; peak {peak / 1e12:.0f} TFLOP/s), peak memory "
            f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


@check
def plan_predicts_peak_memory():
    """`axo plan`'s peak against torch.cuda.max_memory_allocated of real axo training steps on a
    ~0.5B model (Qwen2.5-0.5B's shape, random weights: reinit_weights), full fine-tune in bf16 and
    LoRA, micro-batch 4 x 1024 packed tokens (goal: within 15%)."""
    if not CUDA:
        raise Skip("compares with the CUDA allocator's peak")
    import json
    import shutil
    import tempfile
    from pathlib import Path

    from axo.config import validate
    from axo.train.sft import train

    tmp = Path(tempfile.mkdtemp())
    model = tmp / "qwen"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 151936, "hidden_size": 896,
        "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
        "tie_word_embeddings": True, "max_position_embeddings": 4096}))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(Path("examples/tiny-llama") / name, model / name)
    data = tmp / "rows.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"Sort the digits: {' '.join('9876543210' * 3)}",
                                        "output": " ".join("0123456789" * 20)}) + "\n" for _ in range(400)))
    ratios = []
    for name, keys in (("full", {}), ("lora", {"adapter": "lora", "lora_target_linear": True})):
        cfg = validate({"base_model": str(model), "reinit_weights": True, "bf16": "auto", "sample_packing": True,
                        "datasets": [{"path": str(data), "type": "alpaca"}], "sequence_len": 1024,
                        "micro_batch_size": 4, "max_steps": 3, "gradient_checkpointing": True,
                        "output_dir": str(tmp / name), "save_strategy": "no", **keys})
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        memory = train(cfg)["memory"]
        ratios.append((name, memory["planned"]["peak_bytes"] / memory["measured"]["peak_bytes"]))
    assert all(0.85 <= r <= 1.15 for _, r in ratios), ratios
    return ", ".join(f"{name}: planned/measured peak {r:.2f}" for name, r in ratios)


@check
def distillation_loss_in_bf16():
    """KD's loss (axo.train.distill) on CUDA: a bf16 student against a bf16 teacher run alongside,
    on its whole vocabulary and on its top 16 tokens, within 2% of the same models in fp32."""
    if not CUDA:
        raise Skip("bf16 math on a CPU runs 10-45x slower; tests/unit/test_distill_loss.py checks the loss there")
    from transformers import TrainingArguments

    from axo.train.distill import Distillation, KDTrainer

    batch = {k: torch.tensor([v]).to(DEVICE) for k, v in rows([512])[0].items()}
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    out = []
    for topk in (None, 16):
        losses = {}
        for dtype in (torch.float32, torch.bfloat16):
            student, _ = tiny_llama(dtype=dtype)
            teacher, _ = tiny_llama(layers=2, dtype=dtype)
            args = TrainingArguments("/tmp/kd-check", report_to=[], bf16=dtype == torch.bfloat16)
            trainer = KDTrainer(model=student, args=args, distillation=Distillation(
                ce_alpha=0.1, online_topk=topk, teacher=teacher.eval()))
            losses[dtype] = trainer.compute_loss(student, dict(batch)).item()
        gap = abs(losses[torch.bfloat16] - losses[torch.float32]) / losses[torch.float32]
        assert gap < 0.02, (topk, losses)
        out.append(f"top-{topk or 'all'}: relative gap {gap:.4f}")
    return "; ".join(out)


@check
def vision_families_needing_torchvision():
    """Qwen2-VL, Qwen2.5-VL and Mistral 3 (Pixtral), whose processors need torchvision (which has no
    build for the CPU torch of the development machines): the family tests of every other family, run
    here for these (labels on the processor's own expansion, the loss falls, reload, LoRA on the
    language model, named templates, packing declined with the reason)."""
    import subprocess

    needs("torchvision", "pytest", cuda=False)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k",
                          "qwen2_vl or qwen2_5_vl or mistral3", "tests/e2e/test_multimodal_families.py"],
                         capture_output=True, text=True, timeout=300)
    summary = (run.stdout.strip().splitlines() or ["no output"])[-1]
    assert run.returncode == 0 and " passed" in summary and "skipped" not in summary, \
        run.stdout[-3000:] + run.stderr[-2000:]
    return summary


@check
def liger_equals_plain():
    """Liger's kernels (RoPE, RMSNorm, SwiGLU), applied the way axo's runs apply them (transformers'
    apply_liger_kernel with the liger_kernel_config that Axolotl's liger_* keys build), give the loss
    and gradients of the plain model. Last: they patch transformers' Llama classes for the rest of
    the process."""
    needs("liger_kernel")
    from transformers.integrations.liger import apply_liger_kernel

    from axo.train.args import liger_kernels

    batch = [{k: torch.tensor([v]) for k, v in rows([300])[0].items()}]
    plain_model, _ = tiny_llama(dtype=torch.float32)
    loss_a, grads_a = loss_and_grads(plain_model, batch)
    liger_model, _ = tiny_llama(dtype=torch.float32)
    apply_liger_kernel(liger_model, liger_kernels({"rope": True, "rms_norm": True, "swiglu": True}))
    loss_b, grads_b = loss_and_grads(liger_model, batch)
    assert abs(loss_b / loss_a - 1) < 1e-4 and worst(grads_b, grads_a) < 1e-3
    return f"loss {loss_a.item():.4f} vs {loss_b.item():.4f}, worst gradient {worst(grads_b, grads_a):.1e}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*", help="run only these checks")
    args = parser.parse_args()
    print(f"device: {torch.cuda.get_device_name() if CUDA else 'CPU'}, torch {torch.__version__}", flush=True)
    failed = 0
    for name, fn in CHECKS.items():
        if args.only and name not in args.only:
            continue
        start = time.perf_counter()
        try:
            result = fn()
            print(f"PASS {name}: {result} ({time.perf_counter() - start:.0f}s)", flush=True)
        except Skip as reason:
            print(f"SKIP {name}: {reason}", flush=True)
        except Exception as err:  # a check's failure is a line, and the other checks still run
            failed += 1
            print(f"FAIL {name}: {type(err).__name__}: {err}", flush=True)
            traceback.print_exc(limit=3, file=sys.stderr)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
