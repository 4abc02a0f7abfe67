"""What a run will need, from its config alone. The model is built on the meta device (shapes and
dtypes, no weights read), wrapped in its adapter the way training wraps it, and run forward once
on meta tensors: every tensor autograd saves for the backward pass is listed with its size, which
is what activations cost, for this model's own code. Weights, gradients and optimizer states are
counted per parameter, as stored (4-bit and 8-bit weights at their packed size)."""

import json
import math
import warnings
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from axo.config import Config
from axo.errors import AxoError

GiB = 1024 ** 3
BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
# Optimizer state bytes per trained value, as (full-size states, what a bitsandbytes/torchao
# low-bit optimizer keeps per value); low-bit optimizers keep full 32-bit states for tensors under
# 4096 values, as bitsandbytes (min_8bit_size) and torchao do.
STATE_BYTES = {
    **dict.fromkeys(("adamw_torch", "adamw_torch_fused", "adamw_anyprecision", "stable_adamw", "paged_adamw_32bit",
                     "galore_adamw", "galore_adamw_layerwise", "apollo_adamw", "apollo_adamw_layerwise",
                     "schedule_free_adamw", "schedule_free_radam"), (8, None)),
    **dict.fromkeys(("adamw_bnb_8bit", "adamw_8bit", "paged_adamw_8bit", "adamw_torch_8bit",
                     "galore_adamw_8bit", "galore_adamw_8bit_layerwise"), (8, 2)),
    "adamw_torch_4bit": (8, 1),
    **dict.fromkeys(("ademamix", "paged_ademamix_32bit", "grokadamw"), (12, None)),
    **dict.fromkeys(("ademamix_8bit", "paged_ademamix_8bit"), (12, 3)),
    **dict.fromkeys(("lion_32bit", "paged_lion_32bit", "adagrad", "rmsprop", "rmsprop_bnb", "rmsprop_bnb_32bit",
                     "schedule_free_sgd"), (4, None)),
    **dict.fromkeys(("lion_8bit", "paged_lion_8bit", "rmsprop_bnb_8bit"), (4, 1)),
    **dict.fromkeys(("sgd", "lomo", "adalomo"), (0, None)),
}
LOW_BIT_MIN_VALUES = 4096
# Kept in host memory by the optimizer itself (bitsandbytes' paged states move there under pressure).
PAGED = ("paged_",)


@dataclass(frozen=True)
class Setup:
    """The choices the figures depend on. A suggestion is the same setup with one choice changed."""

    micro_batch: int
    accumulation: int
    sequence_len: int
    checkpointing: bool
    optimizer: str
    adapter: str | None  # None, lora, qlora
    bits: int | None  # 4 or 8 for a bitsandbytes base
    precision: str  # fp32, bf16, fp16 (the math)
    master_fp32: bool  # a full fine-tune in bf16 keeps fp32 weights
    processes: int = 1
    shard: str = "none"  # none, fsdp2, zero1, zero2, zero3
    offload_params: bool = False
    offload_optimizer: bool = False
    tensor_parallel: int = 1
    context_parallel: int = 1
    loss_chunks: int = 1
    reference_model: bool = False
    offload_activations: bool = False  # gradient_checkpointing: offload keeps the layers' inputs in CPU memory
    sequences_per_row: int = 1  # a preference pair runs its chosen and its rejected answer

    @property
    def data_parallel(self) -> int:
        return max(1, self.processes // (self.tensor_parallel * self.context_parallel))

    @property
    def shards(self) -> int:
        return self.data_parallel if self.shard != "none" else 1


@dataclass
class Figures:
    """Bytes per device, and counts."""

    total_params: int = 0
    trainable_params: int = 0
    weights: float = 0
    gradients: float = 0
    optimizer: float = 0
    activations: float = 0  # saved for backward: the layers, embeddings, and the head
    per_layer: float = 0  # one decoder layer's saved tensors
    layer_inputs: float = 0  # with checkpointing, what every layer keeps: its input
    layer_params: int = 0  # values in one decoder layer
    gathered: float = 0  # sharded runs: the whole weights of the layers running now, part of `weights`
    logits: float = 0  # the head's part of `activations` (logits and loss)
    transient: float = 0  # made at the start of backward: the gradient of the logits
    reference: float = 0
    teacher: float = 0  # distillation: the frozen teacher's weights and one micro-batch of its log-probs
    host: float = 0  # offloaded to CPU memory
    flops_per_token: float = 0
    tokens_per_step: int = 0
    layers: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def state(self) -> float:
        return self.weights + self.gradients + self.optimizer

    def peak(self, accumulation: int = 1) -> float:
        """The larger of the start of backward (every activation, the logits' gradient, and the
        gradients accumulated so far when several micro-batches make a step) and its end (every
        gradient, and the activations of the layer backward reaches last)."""
        start = self.activations + self.transient + (self.gradients if accumulation > 1 else 0)
        end = self.gradients + self.per_layer + self.layer_inputs
        return self.weights + self.optimizer + self.reference + self.teacher + max(start, end)


def setup_of(cfg: Config, processes: int = 1, bf16_device: bool = True) -> Setup:
    """The setup a config asks for, on `processes` processes of a device with (or without) bf16 math."""
    from axo.config.parallel import DEEPSPEED_PRESETS

    m, t, p = cfg.model, cfg.train, cfg.parallel
    if m.fp16:
        precision = "fp16"
    elif m.bf16 == "auto":  # as training resolves it: bf16 where the device has bf16 math
        precision = "bf16" if bf16_device else "fp32"
    else:
        precision = "bf16" if m.bf16 else "fp32"
    shard, offload_params, offload_optimizer = "none", False, False
    if p.use_fsdp:
        shard, offload_params = "fsdp2", p.fsdp_options.offload_params
    elif p.deepspeed:
        ds = _deepspeed(p.deepspeed, DEEPSPEED_PRESETS)
        zero = ds.get("zero_optimization", {})
        shard = f"zero{zero.get('stage', 0)}" if zero.get("stage") else "none"
        offload_optimizer = (zero.get("offload_optimizer") or {}).get("device") == "cpu"
        offload_params = (zero.get("offload_param") or {}).get("device") == "cpu"
    bits = 4 if cfg.quant.load_in_4bit else 8 if cfg.quant.load_in_8bit else None
    return Setup(
        micro_batch=t.micro_batch_size, accumulation=t.gradient_accumulation_steps, sequence_len=cfg.data.sequence_len,
        checkpointing=bool(t.gradient_checkpointing) or bool(p.use_fsdp and p.fsdp_options.activation_checkpointing),
        offload_activations=t.gradient_checkpointing == "offload",
        optimizer=t.optimizer, adapter=cfg.lora.adapter, bits=bits, precision=precision,
        master_fp32=precision == "bf16" and not cfg.lora.adapter and m.bf16 != "full",
        processes=processes, shard=shard, offload_params=offload_params, offload_optimizer=offload_optimizer,
        tensor_parallel=p.tensor_parallel_size or 1, context_parallel=p.context_parallel_size or 1,
        loss_chunks=(t.chunked_cross_entropy_num_chunks or 8) if t.chunked_cross_entropy else 1,
        reference_model=cfg.method.reference_model and not cfg.lora.adapter and not cfg.rl.precompute_ref_log_probs,
        sequences_per_row=2 if cfg.method.rows.endswith(":PairRows") else 1,
    )


def _deepspeed(value, presets) -> dict:
    """The DeepSpeed config: inline, one of axo's presets, or the user's file (checked to exist)."""
    if isinstance(value, dict):
        return value
    folder = Path(__file__).parents[1] / "parallel" / "deepspeed"
    return json.loads((folder / f"{value}.json" if value in presets else Path(value)).read_text())


def estimate(cfg: Config, setup: Setup) -> Figures:
    """The figures of one setup: per-parameter state, then one meta forward for activations."""
    model, quantized = meta_model(cfg, setup)
    fig = Figures(layers=len(decoder_layers(model)))
    _count_state(model, quantized, setup, fig)
    with _math_dtypes(model, setup, quantized):
        _count_activations(model, cfg, setup, fig)
    _divide(setup, fig)
    if setup.reference_model:
        fig.reference = fig.total_params * BYTES[setup.precision] / (setup.shards * setup.tensor_parallel)
    if cfg.rl.teacher_model:
        try:
            fig.teacher = teacher_bytes(cfg, setup)
        except (OSError, ValueError) as err:
            fig.notes.append(f"the teacher ({cfg.rl.teacher_model}) is not counted: its config cannot be read "
                             f"({str(err).splitlines()[0][:120]})")
    fig.flops_per_token = flops_per_token(model, cfg, setup)
    fig.tokens_per_step = (setup.micro_batch * setup.sequences_per_row * setup.sequence_len * setup.accumulation
                           * setup.data_parallel)
    return fig


def teacher_bytes(cfg: Config, setup: Setup) -> float:
    """The teacher of KD and GKD on each device (whole: axo does not shard it): its weights in the
    run's precision, and a micro-batch of its logits and log-probs in fp32 (axo.train.distill)."""
    import torch
    import transformers

    config = transformers.AutoConfig.from_pretrained(cfg.rl.teacher_model, trust_remote_code=cfg.model.trust_remote_code)
    with torch.device("meta"):
        teacher = transformers.AutoModelForCausalLM.from_config(config, trust_remote_code=cfg.model.trust_remote_code)
    weights = sum(p.numel() for p in teacher.parameters()) * BYTES[setup.precision]
    vocab = config.get_text_config().vocab_size
    return weights + 2 * 4 * setup.micro_batch * setup.sequence_len * vocab


_BUILT: dict = {}  # (config, what is built) -> (config, model, quantized names): suggestions reuse them


@contextmanager
def _math_dtypes(model, setup: Setup, quantized: set):
    """The shared meta model in the dtypes the forward computes in: bf16 for a full fine-tune with
    fp32 master weights (autocast), fp32 for what kbit training keeps unquantized (the norms, whose
    fp32 outputs feed the next layer); restored afterwards."""
    import torch

    before = {name: p.dtype for name, p in model.named_parameters()}
    for name, param in model.named_parameters():
        if setup.master_fp32:
            param.data = param.data.to(torch.bfloat16)
        elif setup.bits and param.element_size() == 2 and _base_name(name) not in quantized:
            param.data = param.data.float()
    try:
        yield
    finally:
        for name, param in model.named_parameters():
            param.data = param.data.to(before[name])


def meta_model(cfg: Config, setup: Setup):
    """The model as training holds it, on the meta device: base weights in the dtype they load
    in, the adapter (fp32, as peft keeps it) on top; and for a bitsandbytes base, the names of the
    weights stored quantized. LoRA and QLoRA share one model: only the bytes counted differ."""
    key = (id(cfg), bool(setup.adapter), setup.precision, setup.master_fp32)
    if key not in _BUILT:
        if len(_BUILT) > 8:
            _BUILT.clear()
        _BUILT[key] = (cfg, _build_meta_model(cfg, setup))  # holding cfg keeps its id unique
    model = _BUILT[key][1]
    if setup.bits and "_axo_plan_quantized" not in model.__dict__:
        model.__dict__["_axo_plan_quantized"] = _quantizable(model)
    return model, model.__dict__["_axo_plan_quantized"] if setup.bits else set()


def _quantizable(model) -> set:
    """The weights bitsandbytes stores quantized: every Linear's but the output head's (and the
    adapter's own)."""
    import torch

    head = model.get_output_embeddings()
    return {_base_name(f"{name}.weight") for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and module is not head and "lora_" not in name
            and not any(part in ("modules_to_save", "original_module") for part in name.split("."))}


def _build_meta_model(cfg: Config, setup: Setup):
    import torch

    from axo.model.loader import load_config, model_class

    config = load_config(cfg)
    dtype = torch.float32 if setup.master_fp32 or setup.precision == "fp32" else getattr(torch, _torch_name(setup))
    cls = model_class(cfg, config)
    build = getattr(cls, "from_config", None) or cls._from_config
    _register_attention()
    attention = "eager" if cfg.model.attn_implementation == "eager" else "axo_plan"
    with torch.device("meta"):
        try:
            model = build(config, dtype=dtype, attn_implementation=attention)
        except (ValueError, TypeError):
            model = build(config, dtype=dtype)
    if setup.adapter:
        with torch.device("meta"):  # LoRA matrices too: initializing them on the CPU is most of the time
            model = _with_adapter(model, cfg, setup)
    return model


def _torch_name(setup: Setup) -> str:
    return {"bf16": "bfloat16", "fp16": "float16"}[setup.precision]


def _with_adapter(model, cfg: Config, setup: Setup):
    from peft import get_peft_model

    from axo.model.adapters import linear_module_names, not_linear_names, to_lora_config, tower_linears

    lora = cfg.lora if cfg.lora.adapter else cfg.lora.model_copy(update={"adapter": setup.adapter,
                                                                           "lora_target_linear": True})
    if not (lora.lora_target_modules or lora.lora_target_linear or lora.lora_target_parameters):
        lora = lora.model_copy(update={"lora_target_linear": True})
    tied = bool(getattr(model.config, "tie_word_embeddings", False)) and model.get_output_embeddings() is not None
    with warnings.catch_warnings():  # peft's own deprecation notices belong to training, not to the plan
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, to_lora_config(lora, cfg.model.task, (), linear_module_names(model), tied,
                                                    not_linear_names(model), tower_linears(model, cfg.model.task, lora)))


def _layer_list(model):
    """The repeated blocks: the ModuleList holding the most parameters (found once per model)."""
    import torch

    found = model.__dict__.get("_axo_plan_layers")
    if found is None:
        lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m)]
        found = max(lists, key=lambda m: sum(p.numel() for p in m.parameters())) if lists else torch.nn.ModuleList()
        model.__dict__["_axo_plan_layers"] = found  # not a submodule: outside nn.Module's registry
    return found


def decoder_layers(model) -> list:
    return list(_layer_list(model))


def _identical(layers: list, model) -> bool:
    """Layers of one class and shapes, of one attention type (no sliding/full alternation)."""
    if "_axo_plan_identical" not in model.__dict__:
        model.__dict__["_axo_plan_identical"] = _compare_layers(layers, model)
    return model.__dict__["_axo_plan_identical"]


def _compare_layers(layers: list, model) -> bool:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    if len(set(getattr(config, "layer_types", None) or [None])) > 1 or len(layers) < 2:
        return False
    shape = [(n, tuple(p.shape)) for n, p in layers[0].named_parameters()]
    return all(type(layer) is type(layers[0]) and [(n, tuple(p.shape)) for n, p in layer.named_parameters()] == shape
               for layer in layers[1:])


def _base_name(name: str) -> str:
    """A base weight's name outside peft's wrapper."""
    from axo.model.adapters import PEFT_PREFIX

    return name.replace(".base_layer.", ".").removeprefix(PEFT_PREFIX)


def _held_size(param, bits: int | None) -> int:
    """Bytes per value of a weight that is not quantized: prepare_model_for_kbit_training keeps
    every half-precision one in fp32 on a bitsandbytes base."""
    return 4 if bits and param.element_size() == 2 else param.element_size()


def _stored_bytes(name: str, param, quantized: set, bits: int | None) -> float:
    if _base_name(name) not in quantized:
        return param.numel() * _held_size(param, bits)
    n = param.numel()
    if bits == 4:  # NF4: two values a byte; per 64 values an 8-bit scale, per 256 of those an fp32 one
        return n / 2 + n / 64 + n / 64 / 256 * 4
    return n + param.shape[0] * 4  # LLM.int8: a byte a value and an fp32 scale per output row


def _count_state(model, quantized: set, setup: Setup, fig: Figures) -> None:
    full, low = STATE_BYTES.get(setup.optimizer, (8, None))
    muon = setup.optimizer == "muon"
    layers = decoder_layers(model)
    fig.layer_params = sum(p.numel() for p in layers[0].parameters()) if layers else 0
    for name, param in model.named_parameters():
        n = param.numel()
        fig.total_params += n
        fig.weights += _stored_bytes(name, param, quantized, setup.bits)
        if not param.requires_grad:
            continue
        fig.trainable_params += n
        size = _held_size(param, setup.bits)
        fig.gradients += n * size
        scale = size / 4  # states follow the parameter's dtype
        if muon:  # momentum for hidden weight matrices, AdamW for the rest
            fig.optimizer += n * (4 if param.ndim == 2 and "embed" not in name and "lm_head" not in name else 8) * scale
        elif low is not None and n >= LOW_BIT_MIN_VALUES:
            fig.optimizer += n * low + n / 256 * 8  # blockwise scales of the two states
        else:
            fig.optimizer += n * full * scale
    if setup.optimizer.startswith(PAGED):
        fig.notes.append(f"`optimizer: {setup.optimizer}` pages its states to host memory under pressure; "
                         "counted on the device here")
    if setup.optimizer not in STATE_BYTES and not muon:
        fig.notes.append(f"`optimizer: {setup.optimizer}`: counted as AdamW's two fp32 states")


def _count_activations(model, cfg: Config, setup: Setup, fig: Figures) -> None:
    """One forward of a micro-batch on the meta device, recording what autograd saves, by where it
    is saved: before the layers, in layer i, or after them (the head: final norm, logits, loss)."""
    import torch

    container = _layer_list(model)
    every_layer = list(container)
    same = _identical(every_layer, model)
    layers = every_layer[:1] if same else every_layer
    where = ["embed"]
    inputs: list[float] = []
    handles = []
    for i, layer in enumerate(layers):
        def enter(module, args, kwargs, i=i):
            where[0] = i
            hidden = args[0] if args else kwargs.get("hidden_states")
            if i == len(inputs) and isinstance(hidden, torch.Tensor):
                inputs.append(hidden.numel() * hidden.element_size())
        handles.append(layer.register_forward_pre_hook(enter, with_kwargs=True))
        handles.append(layer.register_forward_hook(lambda *_: where.__setitem__(0, "head")))
    params = {id(p) for p in model.parameters()}
    saved: dict[int, tuple] = {}

    def pack(t):
        base = t if t._base is None else t._base
        if id(t) not in params and id(base) not in params and id(base) not in saved:
            saved[id(base)] = (base, where[0], base.numel() * base.element_size())
        return t

    tokens = math.ceil(setup.sequence_len / setup.context_parallel)
    ids = torch.zeros(setup.micro_batch * setup.sequences_per_row, tokens, dtype=torch.long, device="meta")
    labels = ids if cfg.model.task in ("causal_lm", "multimodal_lm") else None
    model.train()
    kept = dict(container._modules)
    if same:  # identical layers save identical tensors: run one, count it for all
        container._modules = {k: kept[k] for k in list(kept)[:1]}
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(input_ids=ids, labels=labels) if labels is not None else model(input_ids=ids)
    finally:
        container._modules = kept
        for h in handles:
            h.remove()
    if same:
        inputs *= len(every_layer)
    by_place = defaultdict(float)
    for _, place, size in saved.values():
        by_place[place] += size
    per_layer = [by_place[i] for i in range(len(layers))] * (len(every_layer) if same else 1)
    fig.logits = by_place["head"] / setup.loss_chunks
    outside = by_place["embed"] + fig.logits
    logits = getattr(out, "logits", None)
    if labels is not None and logits is not None:  # d(log-softmax) in fp32 and d(logits) in their dtype
        fig.transient = logits.numel() * (4 + logits.element_size()) / setup.loss_chunks
    fig.per_layer = max(per_layer, default=0)
    if setup.checkpointing:  # each layer keeps its input; one at a time is recomputed, in backward
        fig.layer_inputs = sum(inputs)
        if setup.offload_activations:  # in CPU memory until backward brings each back
            fig.host += fig.layer_inputs - max(inputs, default=0)
            fig.layer_inputs = max(inputs, default=0)
        fig.activations = outside + fig.layer_inputs
    else:
        fig.activations = outside + sum(per_layer)


def _divide(setup: Setup, fig: Figures) -> None:
    """What sharding, tensor parallelism and offloading take off each device."""
    tp = setup.tensor_parallel
    n = setup.shards
    fig.weights /= tp
    fig.gradients /= tp
    fig.optimizer /= tp
    layer_share = (fig.activations - fig.logits) / tp
    fig.activations = layer_share + fig.logits
    fig.per_layer /= tp
    if setup.shard in ("fsdp2", "zero3"):
        fig.weights, fig.gradients, fig.optimizer = fig.weights / n, fig.gradients / n, fig.optimizer / n
        # a layer's weights are gathered whole to run it, the next one's prefetched meanwhile
        fig.gathered = 2 * fig.layer_params * BYTES[setup.precision] / tp if n > 1 or setup.offload_params else 0
    elif setup.shard == "zero2":
        fig.gradients, fig.optimizer = fig.gradients / n, fig.optimizer / n
    elif setup.shard == "zero1":
        fig.optimizer /= n
    if setup.offload_optimizer or setup.offload_params:
        fig.host += fig.optimizer
        fig.optimizer = 0
    if setup.offload_params:
        fig.host += fig.weights + fig.gradients
        fig.weights = fig.gradients = 0
    fig.weights += fig.gathered


def flops_per_token(model, cfg: Config, setup: Setup) -> float:
    """Matmul FLOPs per trained token: the forward is 2 per weight of every Linear (MoE experts
    counted at the share a token uses) plus causal attention; the backward is twice the forward
    for a full fine-tune and once for a frozen base (input gradients only); checkpointing redoes
    the forward."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    experts = getattr(config, "num_local_experts", None) or getattr(config, "num_experts", None)
    used = getattr(config, "num_experts_per_tok", None)
    share = used / experts if experts and used else 1.0
    weights = model.__dict__.get("_axo_plan_matmul_weights")
    if weights is None:
        weights = model.__dict__["_axo_plan_matmul_weights"] = _matmul_weights(model, share)
    hidden = getattr(config, "num_attention_heads", 0) * (getattr(config, "head_dim", None) or (
        getattr(config, "hidden_size", 0) // max(getattr(config, "num_attention_heads", 1), 1)))
    forward = 2 * weights + 2 * len(decoder_layers(model)) * setup.sequence_len * hidden
    passes = (3 if not setup.adapter else 2) + (1 if setup.checkpointing else 0)
    return forward * passes


def _matmul_weights(model, share: float) -> float:
    import torch

    weights = 0.0
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, torch.nn.Linear) and weight is not None and "lora_" not in name:
            weights += weight.numel()
        elif "experts" in name.rsplit(".", 1)[-1]:
            weights += sum(p.numel() for p in module.parameters(recurse=False)) * share
    return weights


def _register_attention() -> None:
    """An attention function that costs what fused attention (flash, SDPA, CPU flash) saves for
    backward, the query, key, value, output and per-row log-sum-exp, with no L x L matrix."""
    import torch
    from transformers import AttentionInterface

    if "axo_plan" in AttentionInterface._global_mapping:
        return

    class Fused(torch.autograd.Function):
        @staticmethod
        def forward(ctx, q, k, v):
            out = torch.empty_like(q)
            lse = torch.empty(q.shape[:-1], dtype=torch.float32, device=q.device)
            ctx.save_for_backward(q, k, v, out, lse)
            return out

        @staticmethod
        def backward(ctx, grad):
            raise AxoError("axo plan's attention stands in for the real one on the meta device only")

    def attention(module, query, key, value, attention_mask, **kwargs):
        return Fused.apply(query, key, value).transpose(1, 2).contiguous(), None

    AttentionInterface.register("axo_plan", attention)
