"""`axo plan`: what a run will need, per device, before anything loads: parameters, memory by
kind (weights, gradients, optimizer states, activations, logits, a reference model), tokens and
steps, time, and whether it fits; when it does not, the cheapest changes that make it fit with the
same global batch. Figures come from estimate.py; this module picks the device and words them."""

import json
import logging
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

from axo.config import Config
from axo.errors import AxoError
from axo.plan.estimate import GiB, STATE_BYTES, Figures, Setup, estimate, setup_of

log = logging.getLogger("axo")
TABLE = Path(__file__).with_name("accelerators.json")
STOP_MARGIN = 1.15  # `axo train` stops before loading when the plan's peak exceeds the GPU by this much
HEADROOM = 0.92  # of device memory usable by tensors: the rest goes to the CUDA context and fragmentation
MFU = 0.4  # share of peak throughput training reaches, when not measured (--measure)


@dataclass(frozen=True)
class Device:
    name: str
    memory: float  # bytes
    tflops: float | None  # dense bf16 peak
    bf16: bool
    gpu: bool


def accelerators() -> list[dict]:
    return json.loads(TABLE.read_text())["accelerators"]


def find_accelerator(name: str) -> dict | None:
    key = name.lower().replace(" ", "-").removeprefix("nvidia-")
    for acc in accelerators():
        if key in [acc["name"].lower(), *acc["aliases"]]:
            return acc
    return None


def device_of(gpu: str | None = None, memory_gib: float | None = None) -> Device:
    """`--gpu NAME` from the table, else the GPU this machine has, else its CPU and RAM; `--memory`
    overrides the memory."""
    import torch

    if gpu:
        acc = find_accelerator(gpu)
        if acc is None:
            raise AxoError(f"--gpu {gpu!r} is not in axo's table; known: "
                           f"{', '.join(a['name'] for a in accelerators())}. Fix: one of those, or --memory GIB.")
        device = Device(acc["name"], acc["memory_gib"] * GiB, acc["bf16_tflops"], acc["bf16"], True)
    elif torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        name = props.name.removeprefix("NVIDIA ")
        acc = next((a for a in accelerators() if a["name"].split("-")[0].lower() in name.lower()), None)
        device = Device(name, props.total_memory, acc["bf16_tflops"] if acc else None,
                        torch.cuda.is_bf16_supported(), True)
    elif memory_gib:
        device = Device(f"{memory_gib:g} GiB accelerator", memory_gib * GiB, None, True, True)
    else:
        import psutil

        device = Device("CPU", psutil.virtual_memory().total, None, False, False)
    if memory_gib:
        device = replace(device, memory=memory_gib * GiB)
    return device


@dataclass
class Plan:
    setup: Setup
    device: Device
    figures: Figures
    steps_per_epoch: int | None
    steps: int | None
    data_source: str
    seconds_per_step: float | None
    throughput: str  # how the time was found
    suggestions: list[tuple[str, Setup, Figures]]
    planning_seconds: float

    @property
    def peak(self) -> float:
        return self.figures.peak(self.setup.accumulation)

    @property
    def fits(self) -> bool:
        return self.peak <= self.device.memory * HEADROOM


def make_plan(cfg: Config, device: Device, processes: int = 1, measure: bool = False, suggest: bool = True,
              count_steps: bool = True) -> Plan:
    _import_libraries(cfg, adapters=suggest)
    started = time.perf_counter()
    setup = setup_of(cfg, processes, bf16_device=device.bf16)
    figures = estimate(cfg, setup)
    steps_per_epoch, source = steps_per_epoch_of(cfg, setup) if count_steps else (None, "not counted")
    steps = cfg.train.max_steps or (steps_per_epoch * math.ceil(cfg.train.num_epochs) if steps_per_epoch else None)
    achieved, how = _throughput(cfg, setup, device, measure)
    per_device_tokens = figures.tokens_per_step / setup.data_parallel / setup.context_parallel
    seconds = figures.flops_per_token * per_device_tokens / setup.tensor_parallel / achieved if achieved else None
    plan = Plan(setup, device, figures, steps_per_epoch, steps, source, seconds, how, [], 0.0)
    if suggest and not plan.fits:
        plan.suggestions = suggestions(cfg, plan)
    plan.planning_seconds = time.perf_counter() - started
    return plan


def _import_libraries(cfg: Config, adapters: bool) -> None:
    """Imported before the plan's clock starts: their import time is the same for every command.
    peft too when the plan may wrap the model in an adapter (its own, or a suggested one)."""
    import transformers.modeling_utils  # noqa: F401

    from axo.model.loader import load_config, model_class

    config = load_config(cfg)
    mapping = getattr(model_class(cfg, config), "_model_mapping", None)
    if mapping is not None and type(config) in mapping:
        mapping[type(config)]  # noqa: B018 (imports the model's code)
    if cfg.lora.adapter or adapters:
        import peft  # noqa: F401


def _throughput(cfg: Config, setup: Setup, device: Device, measure: bool) -> tuple[float | None, str]:
    if measure:
        from axo.plan.calibrate import achieved_flops

        flops = achieved_flops(cfg, setup)
        return flops, f"measured on this machine: {flops / 1e12:.3g} TFLOP/s on a 2-layer copy of the model"
    if device.tflops:
        precision = "bf16" if device.bf16 else "fp16"
        return device.tflops * 1e12 * MFU, f"{MFU:.0%} of {device.tflops:g} TFLOP/s {precision} peak; --measure to calibrate"
    return None, "unknown for this device: --measure times it"


def suggestions(cfg: Config, plan: Plan) -> list[tuple[str, Setup, Figures]]:
    """Changes that keep the global batch and learning rate, cheapest in speed first: each one
    that makes the run fit alone; if none does, the fewest of them taken in order along three
    paths: the same devices and method (offloading last), more devices, another method."""
    options = _options(cfg, plan.setup)
    budget = plan.device.memory * HEADROOM
    kept = [(label, _same_global_batch(setup, plan.setup)) for label, setup in options]
    found = [(label, setup, estimate(cfg, setup)) for label, setup in kept if setup is not None]
    alone = [f for f in found if f[2].peak(f[1].accumulation) <= budget]
    if alone:
        return alone[:4]
    s = plan.setup
    memory = [o for o in options if (o[1].adapter, o[1].processes, o[1].shard, o[1].offload_params)
              == (s.adapter, s.processes, s.shard, s.offload_params)]
    offload = [o for o in options if o[1].offload_params and o[1].adapter == s.adapter and o[1].processes == s.processes]
    more = [o for o in options if o[1].processes > s.processes]
    adapter = [o for o in options if o[1].adapter != s.adapter]
    paths = [_combined(cfg, s, memory + offload, budget), _combined(cfg, s, memory + more, budget),
             _combined(cfg, s, memory + adapter, budget)]  # keep everything; more devices; another method
    return [p for i, p in enumerate(paths) if p and p[0] not in [q[0] for q in paths[:i] if q]]


def _options(cfg: Config, s: Setup) -> list[tuple[str, Setup]]:
    options: list[tuple[str, Setup]] = []
    micro, accumulation = s.micro_batch, s.accumulation
    while micro > 1 and micro % 2 == 0:
        micro, accumulation = micro // 2, accumulation * 2
        options.append((f"micro_batch_size: {micro}, gradient_accumulation_steps: {accumulation}",
                        replace(s, micro_batch=micro, accumulation=accumulation)))
    if not s.checkpointing:
        options.append(("gradient_checkpointing: true", replace(s, checkpointing=True)))
    if not s.offload_activations:
        options.append(("gradient_checkpointing: offload", replace(s, checkpointing=True, offload_activations=True)))
    if s.loss_chunks == 1 and cfg.model.task == "causal_lm":
        options.append(("chunked_cross_entropy: true", replace(s, loss_chunks=8)))
    full, low = STATE_BYTES.get(s.optimizer, (8, None))
    if low is None and full >= 8:
        options.append(("optimizer: adamw_8bit", replace(s, optimizer="adamw_8bit")))
    if not (s.offload_params or s.offload_optimizer):
        if s.shard == "fsdp2":
            options.append(("fsdp_config.offload_params: true", replace(s, offload_params=True)))
        else:
            options.append(("deepspeed: zero3_offload (weights and optimizer in CPU memory)",
                            replace(s, shard="zero3", offload_params=True, offload_optimizer=True)))
    if not s.adapter:
        options.append(("adapter: lora, lora_target_linear: true", replace(s, adapter="lora", master_fp32=False)))
    if s.bits != 4:
        options.append(("adapter: qlora, load_in_4bit: true", replace(s, adapter="qlora", bits=4, master_fp32=False)))
    for n in (2, 4, 8):
        if s.processes < n:
            options.append((f"--num-processes {n}" + (", fsdp_version: 2" if s.shard == "none" else ""),
                            replace(s, processes=n, shard=s.shard if s.shard != "none" else "fsdp2")))
    return options


def _same_global_batch(setup: Setup, original: Setup) -> "Setup | None":
    """`setup` with the accumulation that keeps the original global batch, if one does."""
    batch = original.micro_batch * original.accumulation * original.data_parallel
    per_step = setup.micro_batch * setup.data_parallel
    return replace(setup, accumulation=batch // per_step) if batch % per_step == 0 else None


def _combined(cfg: Config, original: Setup, options, budget: float):
    """Options applied in order, each kept only if it lowers the peak, until the run fits; then
    each kept one dropped again if the run fits without it (the fewest changes, the cheapest kept)."""
    def compose(chosen):
        setup = original
        for _, changed in chosen:
            setup = replace(setup, **changed)
        return _same_global_batch(setup, original)

    def peak(setup):
        return estimate(cfg, setup).peak(setup.accumulation)

    chosen, best = [], peak(original)
    for label, option in options:
        changed = {k: v for k, v in vars(option).items() if getattr(original, k) != v and k != "accumulation"}
        trial = [c for c in chosen if not set(c[1]) <= set(changed)] + [(label, changed)]
        setup = compose(trial)
        if setup is None or (value := peak(setup)) >= best:
            continue
        chosen, best = trial, value
        if best <= budget:
            break
    if best > budget:
        return None
    for item in list(chosen[:-1]):
        fewer = [c for c in chosen if c is not item]
        setup = compose(fewer)
        if setup is not None and peak(setup) <= budget:
            chosen = fewer
    setup = compose(chosen)
    return " + ".join(label for label, _ in chosen), setup, estimate(cfg, setup)


def steps_per_epoch_of(cfg: Config, setup: Setup) -> tuple[int | None, str]:
    """Optimizer steps in one epoch: from the prepared data's statistics when axo has prepared this
    data, else from the rows in local files (one sequence each, or packed by token count)."""
    sequences_per_step = setup.micro_batch * setup.accumulation * setup.data_parallel
    stats = _prepared_stats(cfg)
    if stats:
        kept = [s for s in stats if str(s.get("dataset", "")).startswith("datasets")]
        rows, tokens = sum(s.get("rows_out", 0) for s in kept), sum(s.get("tokens", 0) for s in kept)
        sequences = math.ceil(tokens / setup.sequence_len) if cfg.data.sample_packing and tokens else rows
        source = f"the prepared data: {rows:,} rows, {tokens:,} tokens"
    else:
        rows = _rows_in_files(cfg)
        if rows is None:
            return None, "unknown: the data is not local and not prepared yet (`axo preprocess` first)"
        sequences = rows
        source = f"{rows:,} rows in the data files" + (
            "; with sample_packing, fewer: `axo preprocess` counts tokens" if cfg.data.sample_packing else "")
    split = cfg.data.val_set_size or 0
    if 0 < split < 1:
        sequences = int(sequences * (1 - split))
    elif split >= 1:
        sequences -= int(split)
    return max(1, math.ceil(sequences / sequences_per_step)), source


def _prepared_stats(cfg: Config) -> list[dict] | None:
    level = log.level
    log.setLevel(logging.ERROR)  # loading the tokenizer says things that belong to training
    try:
        from axo.data.chat import load_processing
        from axo.data.prepare import _cache_dir

        processing = load_processing(cfg)
        cache = _cache_dir(cfg, processing.tokenizer, processing.chat, processing.processor)
        return json.loads((cache / "stats.json").read_text())
    except Exception:  # no tokenizer here, no cache yet: the plan falls back to counting rows
        return None
    finally:
        log.setLevel(level)


def _rows_in_files(cfg: Config) -> int | None:
    total = 0
    for ds in cfg.data.datasets or []:
        path = Path(ds.path)
        if not path.is_file():
            return None
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            total += pq.ParquetFile(path).metadata.num_rows
        elif suffix in (".jsonl", ".csv", ".txt"):
            with path.open("rb") as f:
                total += sum(1 for line in f if line.strip()) - (suffix == ".csv")
        elif suffix == ".json":
            data = json.loads(path.read_text())
            total += len(data) if isinstance(data, list) else 1
        else:
            return None
    return total or None


def gib(value: float) -> str:
    return f"{value / GiB:.2f} GiB" if value >= GiB / 100 or value == 0 else f"{value / 2**20:.2f} MiB"


def count(n: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f}"


def duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def describe(s: Setup) -> str:
    method = {None: "full fine-tune", "lora": "LoRA", "qlora": "QLoRA"}[s.adapter]
    bits = f" on a {s.bits}-bit base" if s.bits and s.adapter == "lora" else ""
    layout = {"none": "", "fsdp2": ", FSDP2", "zero1": ", ZeRO-1", "zero2": ", ZeRO-2", "zero3": ", ZeRO-3"}[s.shard]
    return f"{method}{bits}, {s.precision}{layout}"


def summary_line(plan: Plan) -> str:
    f, s = plan.figures, plan.setup
    time_part = f", ~{duration(plan.seconds_per_step)}/step" if plan.seconds_per_step else ""
    verdict = "fits" if plan.fits else "DOES NOT FIT"
    return (f"Plan: {describe(s)}; {count(f.trainable_params)} of {count(f.total_params)} parameters train; peak "
            f"~{gib(plan.peak)} per device of {gib(plan.device.memory)} ({plan.device.name}): {verdict}{time_part} "
            "(`axo plan` for details)")


def render(plan: Plan, config_path: str = "") -> str:
    f, s, d = plan.figures, plan.setup, plan.device
    processes = f" x {s.processes}" if s.processes > 1 else ""
    state = STATE_BYTES.get(s.optimizer, (8, None))
    lines = [
        f"axo plan{(' ' + config_path) if config_path else ''}: {describe(s)} on {d.name}{processes} "
        f"({gib(d.memory)} each)",
        f"  parameters     {count(f.total_params)} total, {count(f.trainable_params)} trainable "
        f"({100 * f.trainable_params / max(f.total_params, 1):.2f}%)",
        "  memory per device",
        f"    weights        {gib(f.weights):>12}",
        f"    gradients      {gib(f.gradients):>12}",
        f"    optimizer      {gib(f.optimizer):>12}   ({s.optimizer}: {state[0] if state[1] is None else state[1]} "
        f"bytes per trained value)",
        f"    activations    {gib(f.activations):>12}   ({f.layers} layers, {gib(f.per_layer)} each at most; "
        + ("checkpointing off)" if not s.checkpointing else "checkpointing on: each keeps its input, one is "
           "recomputed at a time" + (", the inputs in CPU memory)" if s.offload_activations else ")")),
        f"      of which logits and loss {gib(f.logits)}" + (f" (in {s.loss_chunks} chunks)" if s.loss_chunks > 1 else ""),
        f"    backward start {gib(f.transient):>12}   (the logits' gradient)",
    ]
    if f.reference:
        lines.append(f"    reference model {gib(f.reference):>11}")
    if f.teacher:
        lines.append(f"    teacher model  {gib(f.teacher):>12}   (frozen, whole on each device, with a micro-batch of "
                     "its log-probs)")
    if f.host:
        lines.append(f"    offloaded to CPU {gib(f.host):>10}")
    share = plan.peak / d.memory
    lines.append(f"    peak           {gib(plan.peak):>12}   {share:.0%} of {gib(d.memory)}: "
                 + ("fits" if plan.fits else "does NOT fit"))
    dp = f" x {s.data_parallel} processes" if s.data_parallel > 1 else ""
    pairs = " x 2 answers" if s.sequences_per_row == 2 else ""
    lines.append(f"  tokens per step  {f.tokens_per_step:,} (micro-batch {s.micro_batch}{pairs} x {s.sequence_len} tokens"
                 f" x {s.accumulation} accumulation{dp})")
    lines.append(f"  steps per epoch  {plan.steps_per_epoch:,} (from {plan.data_source})" if plan.steps_per_epoch
                 else f"  steps per epoch  {plan.data_source}")
    if plan.seconds_per_step:
        total = f", ~{duration(plan.seconds_per_step * plan.steps)} for {plan.steps:,} steps" if plan.steps else ""
        lines.append(f"  time             ~{duration(plan.seconds_per_step)} per step{total} ({plan.throughput})")
    else:
        lines.append(f"  time             {plan.throughput}")
    lines += [f"  note: {n}" for n in f.notes]
    if plan.suggestions:
        lines.append("  to fit, with the same global batch and learning rate:")
        for label, setup, figures in plan.suggestions:
            peak = figures.peak(setup.accumulation)
            lines.append(f"    {label}: peak {gib(peak)}, {gib(figures.state)} weights+gradients+optimizer, "
                         f"{gib(figures.activations)} activations")
    lines.append(f"  (planned in {plan.planning_seconds:.2f} s from the config, after importing the libraries; "
                 "no weights read)")
    return "\n".join(lines)


def check_before_training(cfg: Config, processes: int) -> dict | None:
    """The plan's one line at the start of a run, and what run_summary.json records of it. On a GPU,
    a run whose peak clearly exceeds the memory stops here, before minutes of loading, with the
    changes that would make it fit (`axo train --force` goes on anyway). A model the plan cannot
    build on the meta device is said once and trains as usual."""
    try:
        plan = make_plan(cfg, device_of(), processes, suggest=False, count_steps=False)
    except Exception as err:  # the plan is advice: it never stops a run it cannot figure out
        log.info("Plan: not available for this model (%s: %s)", type(err).__name__, err)
        return None
    if int(os.environ.get("RANK", "0")) == 0:
        log.info(summary_line(plan))
    if plan.device.gpu and plan.peak > plan.device.memory * STOP_MARGIN and not os.environ.get("AXO_FORCE"):
        plan.suggestions = suggestions(cfg, plan)
        raise AxoError(f"{render(plan)}\nStopped before loading anything: the plan's peak, {gib(plan.peak)}, is "
                       f"well over the {gib(plan.device.memory)} of this {plan.device.name}. Fix: one of the changes "
                       "above, or `axo train --force` to try anyway.")
    return {"device": plan.device.name, "peak_bytes": round(plan.peak), "state_bytes": round(plan.figures.state),
            "weights_bytes": round(plan.figures.weights), "gradients_bytes": round(plan.figures.gradients),
            "optimizer_bytes": round(plan.figures.optimizer), "activations_bytes": round(plan.figures.activations)}


def live_state_bytes(model, optimizer) -> dict:
    """The training tensors alive at an optimizer step: weights as stored (each storage once, with
    4-bit weights' scales), gradients and optimizer states, on this process."""
    import torch

    weights, gradients = {}, {}
    for p in model.parameters():
        local = getattr(p, "_local_tensor", p)  # a DTensor's shard on this process (FSDP2)
        weights[local.data_ptr()] = local.numel() * local.element_size()
        state = getattr(p, "quant_state", None)
        for t in (state.absmax, state.state2.absmax) if state is not None and state.nested else ():
            weights[t.data_ptr()] = t.numel() * t.element_size()
        grad = getattr(local, "grad", None) if p.grad is None else getattr(p.grad, "_local_tensor", p.grad)
        if grad is not None:
            gradients[grad.data_ptr()] = grad.numel() * grad.element_size()
    states = 0
    for state in getattr(optimizer, "state", {}).values():
        for value in state.values():
            value = getattr(value, "_local_tensor", value)
            if torch.is_tensor(value):
                states += value.numel() * value.element_size()
    return {"weights_bytes": sum(weights.values()), "gradients_bytes": sum(gradients.values()),
            "optimizer_bytes": states, "state_bytes": sum(weights.values()) + sum(gradients.values()) + states}
