"""`axo plan` against what training really holds, and against hand computations.

Measured side: the model axo trains (axo's own loading, adapter and kbit preparation), the
optimizer transformers' Trainer builds, and two real training steps on the CPU under torch's
MemTracker, which follows every tensor storage alive (parameters, gradients, optimizer states,
activations, temporaries). Hand side: Llama 3 8B and 70B from their published shapes."""

import json
import types

import pytest
import torch
import transformers
from typer.testing import CliRunner

from axo.cli import app
from axo.config import validate
from axo.plan import device_of, make_plan, render
from axo.plan.estimate import GiB, estimate, setup_of

NO_HOOK = types.SimpleNamespace(remove=lambda: None)


def tiny_llama(folder, hidden: int) -> str:
    config = transformers.LlamaConfig(hidden_size=hidden, intermediate_size=hidden * 3, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, vocab_size=1000)
    torch.manual_seed(0)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    return str(folder)


def measure(cfg) -> dict:
    """Bytes of one real training step's tensors on this CPU: state right after the optimizer
    step (weights as stored, 4-bit ones with their scales; gradients; optimizer states) and the
    peak of the second step by MemTracker's categories."""
    from torch.distributed._tools.mem_tracker import MemTracker, _MemRefType

    from axo.model.build import trainable_model
    from axo.model.tokenizer import load_tokenizer
    from axo.train.args import to_training_args

    tokenizer = load_tokenizer(cfg)
    model = trainable_model(cfg, "fp32", tokenizer)
    if cfg.train.gradient_checkpointing:  # what the Trainer turns on from its arguments
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    optimizer_cls, kwargs = transformers.Trainer.get_optimizer_cls_and_kwargs(to_training_args(cfg, "fp32", False))
    optimizer = optimizer_cls([p for p in model.parameters() if p.requires_grad], **kwargs)
    ids = torch.randint(0, len(tokenizer), (cfg.train.micro_batch_size, cfg.data.sequence_len))
    tracker = MemTracker()
    for p in model.parameters():  # MemTracker hooks every parameter's gradient; frozen ones have none
        if not p.requires_grad:
            tracker._param_to_grad_hook_handles[p] = (NO_HOOK, NO_HOOK)
    tracker.track_external(model, optimizer)
    measured = {}
    with tracker:
        for step in range(2):
            model(input_ids=ids, labels=ids).loss.backward()
            optimizer.step()
            if step == 0:
                measured["state"] = _stored(model) + sum(
                    p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None) + sum(
                    v.numel() * v.element_size() for s in optimizer.state.values() for v in s.values()
                    if torch.is_tensor(v))
                tracker.reset_mod_stats()
            optimizer.zero_grad(set_to_none=True)
    peak = tracker.get_tracker_snapshot("peak")[torch.device("cpu")]
    measured.update(peak=peak["Total"], activations=peak[_MemRefType.ACT])
    return measured


def _stored(model) -> int:
    """Every distinct storage a parameter holds, 4-bit weights' scales included."""
    seen = {}
    for p in model.parameters():
        seen[p.data_ptr()] = p.numel() * p.element_size()
        state = getattr(p, "quant_state", None)
        for t in (state.absmax, state.state2.absmax) if state is not None and state.nested else ():
            seen[t.data_ptr()] = t.numel() * t.element_size()
    return sum(seen.values())


KINDS = {"full": {}, "lora": {"adapter": "lora", "lora_r": 8, "lora_target_linear": True},
         "qlora": {"adapter": "qlora", "load_in_4bit": True, "lora_r": 8, "lora_target_linear": True}}


@pytest.mark.parametrize("hidden", [32, 64, 128])
@pytest.mark.parametrize("kind", list(KINDS))
def test_plan_matches_what_training_holds(tmp_path, tiny_model, hidden, kind):
    folder = tiny_llama(tmp_path / "model", hidden)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / "model" / name).write_bytes((tiny_model / name).read_bytes())
    cfg = validate({"base_model": folder, "datasets": [{"path": "x.jsonl", "type": "alpaca"}], "micro_batch_size": 2,
                    "sequence_len": 128, "output_dir": str(tmp_path / "out"), **KINDS[kind]})
    figures = estimate(cfg, setup_of(cfg, bf16_device=False))
    measured = measure(cfg)
    assert figures.state == pytest.approx(measured["state"], rel=0.05), (kind, hidden)
    assert figures.activations == pytest.approx(measured["activations"], rel=0.25), (kind, hidden)
    assert figures.peak() == pytest.approx(measured["peak"], rel=0.25), (kind, hidden)


def test_checkpointing_keeps_layer_inputs_only(tmp_path, tiny_model):
    folder = tiny_llama(tmp_path / "model", 64)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / "model" / name).write_bytes((tiny_model / name).read_bytes())
    base = {"base_model": folder, "datasets": [{"path": "x.jsonl", "type": "alpaca"}], "micro_batch_size": 2,
            "sequence_len": 128, "output_dir": str(tmp_path / "out")}
    plain = estimate(validate(base), setup_of(validate(base), bf16_device=False))
    cfg = validate({**base, "gradient_checkpointing": True})
    checkpointed = estimate(cfg, setup_of(cfg, bf16_device=False))
    assert checkpointed.activations < plain.activations
    measured = measure(cfg)
    assert checkpointed.peak() == pytest.approx(measured["peak"], rel=0.25)


# Llama 3's published shapes (config.json of meta-llama/Meta-Llama-3-8B and -70B).
LLAMA3 = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256,
          "num_key_value_heads": 8, "rope_theta": 500000.0, "max_position_embeddings": 8192,
          "tie_word_embeddings": False, "torch_dtype": "bfloat16", "rms_norm_eps": 1e-5}
SIZES = {"8b": {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32},
         "70b": {"hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80, "num_attention_heads": 64}}


def llama3(tmp_path, size: str) -> str:
    folder = tmp_path / f"llama3-{size}"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({**LLAMA3, **SIZES[size]}))
    return str(folder)


def shapes(size: str) -> dict:
    s = SIZES[size]
    h, i, n, heads = s["hidden_size"], s["intermediate_size"], s["num_hidden_layers"], s["num_attention_heads"]
    kv = 8 * h // heads
    linear = {"q": h * h, "k": h * kv, "v": h * kv, "o": h * h, "gate": h * i, "up": h * i, "down": i * h}
    lora_16 = 16 * sum(({"q": h + h, "k": h + kv, "v": h + kv, "o": h + h, "gate": h + i, "up": h + i,
                         "down": i + h}).values())
    return {"layers": n, "hidden": h, "linear": n * sum(linear.values()), "embed": 128256 * h,
            "norms": n * 2 * h + h, "lora": n * lora_16}


def test_8b_full_fine_tune_on_8_gpus_with_fsdp2(tmp_path):
    cfg = validate({"base_model": llama3(tmp_path, "8b"), "datasets": [{"path": "x.jsonl", "type": "alpaca"}],
                    "bf16": "auto", "fsdp_version": 2, "micro_batch_size": 1, "gradient_accumulation_steps": 4,
                    "sequence_len": 4096, "gradient_checkpointing": True, "output_dir": str(tmp_path / "out")})
    plan = make_plan(cfg, device_of("H100-80GB"), processes=8)
    f, s = plan.figures, plan.setup
    hand = shapes("8b")
    total = hand["linear"] + 2 * hand["embed"] + hand["norms"]
    assert total == 8_030_261_248  # the published 8.03 B
    assert (f.total_params, f.trainable_params) == (total, total)
    assert (s.precision, s.master_fp32, s.shard, s.shards) == ("bf16", True, "fsdp2", 8)
    layer = hand["linear"] // 32 + 2 * 4096
    # fp32 master weights sharded 8 ways, and the bf16 weights of the layer running and the one prefetched
    assert f.weights == total * 4 / 8 + 2 * layer * 2 and f.gradients == total * 4 / 8
    assert f.optimizer == total * 8 / 8  # AdamW: two fp32 states
    assert f.transient == 1 * 4096 * 128256 * (4 + 2)  # d(log-softmax) in fp32 and d(logits) in bf16
    assert f.tokens_per_step == 1 * 4096 * 4 * 8
    # checkpointing keeps each layer's bf16 input: 32 x 4096 x 4096 x 2 bytes, plus the head and embeddings
    assert f.activations >= 32 * 4096 * 4096 * 2
    assert plan.fits and "full fine-tune, bf16, FSDP2" in render(plan)


def test_70b_qlora_on_one_80gb_gpu(tmp_path):
    cfg = validate({"base_model": llama3(tmp_path, "70b"), "datasets": [{"path": "x.jsonl", "type": "alpaca"}],
                    "bf16": "auto", "adapter": "qlora", "load_in_4bit": True, "lora_r": 16, "lora_alpha": 32,
                    "lora_target_linear": True, "micro_batch_size": 1, "sequence_len": 2048,
                    "gradient_checkpointing": True, "output_dir": str(tmp_path / "out")})
    plan = make_plan(cfg, device_of("H100-80GB"))
    f = plan.figures
    hand = shapes("70b")
    assert hand["linear"] + 2 * hand["embed"] + hand["norms"] == 70_553_706_496  # the published 70.6 B
    assert f.trainable_params == hand["lora"] == 207_093_760
    nf4 = hand["linear"] * (0.5 + 1 / 64 + 4 / 64 / 256)  # packed values, 8-bit scales, fp32 scales of scales
    fp32 = (2 * hand["embed"] + hand["norms"] + hand["lora"]) * 4  # kbit training keeps the rest in fp32
    assert f.weights == pytest.approx(nf4 + fp32, rel=1e-9)
    assert f.gradients == hand["lora"] * 4 and f.optimizer == pytest.approx(hand["lora"] * 8, rel=1e-3)
    assert f.activations >= 80 * 2048 * 8192 * 2
    assert 40 * GiB < plan.peak < 60 * GiB and plan.fits
    text = render(plan)  # what `axo plan` prints carries the hand-computed figures
    assert f"weights        {(nf4 + fp32) / GiB:>8.2f} GiB" in text and "207.09 M trainable" in text
    assert f"gradients      {hand['lora'] * 4 / GiB:>8.2f} GiB" in text


def test_what_does_not_fit_gets_changes_that_keep_the_global_batch(tmp_path):
    cfg = validate({"base_model": llama3(tmp_path, "8b"), "datasets": [{"path": "x.jsonl", "type": "alpaca"}],
                    "bf16": "auto", "micro_batch_size": 4, "gradient_accumulation_steps": 2, "sequence_len": 2048,
                    "output_dir": str(tmp_path / "out")})
    plan = make_plan(cfg, device_of("A100-40GB"))
    assert not plan.fits and plan.suggestions
    for label, setup, figures in plan.suggestions:
        assert setup.micro_batch * setup.accumulation * setup.data_parallel == 8, label
        assert figures.peak(setup.accumulation) <= plan.device.memory * 0.92, label
    text = render(plan)
    assert "does NOT fit" in text and "to fit, with the same global batch" in text


def test_offloaded_checkpoints_leave_the_device(tmp_path):
    base = {"base_model": llama3(tmp_path, "8b"), "datasets": [{"path": "x.jsonl", "type": "alpaca"}],
            "bf16": "auto", "adapter": "lora", "lora_target_linear": True, "sequence_len": 4096}
    on_device = estimate(validate({**base, "gradient_checkpointing": True}),
                         setup_of(validate({**base, "gradient_checkpointing": True})))
    cfg = validate({**base, "gradient_checkpointing": "offload"})
    offloaded = estimate(cfg, setup_of(cfg))
    layer_input = 4096 * 4096 * 2  # one sequence's hidden states in bf16
    assert on_device.activations - offloaded.activations == pytest.approx(31 * layer_input)
    assert offloaded.host == pytest.approx(31 * layer_input)


def test_a_run_that_clearly_cannot_fit_a_gpu_stops_before_loading(make_config, monkeypatch):
    """The device is axo's own description of this machine's GPU: one of 64 MiB stands in for a
    GPU the run overflows (this machine has none)."""
    import axo.plan
    from axo.errors import AxoError
    from axo.plan import Device, check_before_training

    monkeypatch.setattr(axo.plan, "device_of", lambda *a: Device("64 MiB GPU", 64 * 2**20, 100.0, True, True))
    cfg = make_config(micro_batch_size=64, sequence_len=512)
    with pytest.raises(AxoError, match=r"(?s)does NOT fit.*to fit, with the same global batch.*Stopped before "
                                       r"loading anything.*`axo train --force`"):
        check_before_training(cfg, 1)
    monkeypatch.setenv("AXO_FORCE", "1")
    assert check_before_training(cfg, 1)["peak_bytes"] > 64 * 2**20
    monkeypatch.delenv("AXO_FORCE")
    assert check_before_training(make_config(micro_batch_size=1, sequence_len=64), 1)["device"] == "64 MiB GPU"


def test_cli_plan_and_its_errors(tmp_path):
    folder = llama3(tmp_path, "8b")
    config = tmp_path / "c.yml"
    config.write_text(f"base_model: {folder}\ndatasets: [{{path: x.jsonl, type: alpaca}}]\nadapter: lora\n"
                      "lora_target_linear: true\nsequence_len: 1024\ngradient_checkpointing: true\n")
    result = CliRunner().invoke(app, ["plan", str(config), "--gpu", "L4"])
    assert result.exit_code == 0, result.output
    assert "LoRA, bf16 on L4" in result.output and "peak" in result.output and "no weights read" in result.output
    result = CliRunner().invoke(app, ["plan", str(config), "--gpu", "Z9000"])
    assert result.exit_code != 0 and "H100-80GB" in str(result.exception)


def test_measure_times_the_models_own_layers_here(make_config, alpaca_file):
    from axo.plan import device_of

    plan = make_plan(make_config(), device_of(), measure=True)
    assert plan.seconds_per_step > 0 and plan.throughput.startswith("measured on this machine")
    assert plan.steps_per_epoch == 64 // 8 and "64 rows" in plan.data_source  # micro-batch 8, local rows


def test_a_preference_pair_runs_two_answers(make_config):
    sft = make_config(micro_batch_size=4)
    dpo = make_config(micro_batch_size=4, rl="dpo", chat_template="chatml", adapter="lora", lora_target_linear=True,
                      datasets=[{"path": "pairs.jsonl", "type": "chat_template.default"}])
    lora = make_config(micro_batch_size=4, adapter="lora", lora_target_linear=True)
    pair, single = estimate(dpo, setup_of(dpo, bf16_device=False)), estimate(lora, setup_of(lora, bf16_device=False))
    assert pair.tokens_per_step == 2 * single.tokens_per_step == 2 * estimate(sft, setup_of(sft, False)).tokens_per_step
    assert pair.activations == pytest.approx(2 * single.activations, rel=0.02)


def test_a_distillation_teacher_is_counted_whole(make_config, tiny_model):
    """KD and GKD hold the frozen teacher on every device: its fp32 weights and a micro-batch of its
    logits and log-probs (fp32), on top of SFT's figures."""
    sft = make_config(micro_batch_size=4)
    kd = make_config(micro_batch_size=4, kd_trainer=True, teacher_model=str(tiny_model))
    plain, distilled = estimate(sft, setup_of(sft, bf16_device=False)), estimate(kd, setup_of(kd, bf16_device=False))
    params = sum(p.numel() for p in transformers.AutoModelForCausalLM.from_pretrained(tiny_model).parameters())
    assert distilled.teacher == 4 * params + 2 * 4 * 4 * 128 * 373
    assert plain.teacher == 0
    assert distilled.peak() == pytest.approx(plain.peak() + distilled.teacher)
