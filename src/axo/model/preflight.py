"""Preflight: hardware-dependent choices and checks, made before anything heavy loads, and kept out
of config parsing so that validating a config never depends on the machine.

`resolve_precision` turns bf16 / fp16 into what this machine trains in; `check_backends` makes sure
the attention backend and kernels the config asks for can run here."""

import importlib.util
import logging
from functools import cache
from typing import Literal

from axo.config import Config
from axo.config.model import ModelConfig
from axo.errors import AxoError

log = logging.getLogger("axo")
Precision = Literal["bf16", "fp16", "fp32"]
# attention backend -> (module that must be importable, pip package, needs CUDA)
BACKEND_NEEDS = {
    "flash_attention_2": ("flash_attn", "flash-attn", True),
    "flash_attention_3": ("flash_attn_interface", "flash-attn-3 (built from source)", True),
}


def resolve_precision(model_cfg: ModelConfig) -> Precision:
    import torch

    cuda = torch.cuda.is_available()
    if model_cfg.fp16 and model_cfg.bf16 is True:
        raise AxoError("`bf16: true` and `fp16: true` exclude each other; keep one.")
    if model_cfg.fp16:
        if not cuda:
            raise AxoError("`fp16: true` needs a CUDA GPU and none is visible. "
                           "Fix: set `fp16: false` (the CPU trains in fp32).")
        return "fp16"
    if model_cfg.bf16 == "auto":
        # On CPUs without native bf16 matmuls bf16 runs 10-45x slower than fp32, so auto picks fp32.
        return "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    if model_cfg.bf16:
        if not cuda:
            log.warning("`bf16: %s` on a CPU: expect it to be much slower than fp32 "
                        "(`bf16: auto` would pick fp32 here).", model_cfg.bf16)
        return "bf16"
    return "fp32"


def weights_dtype(cfg: Config, precision: Precision):
    """The dtype the trained model's weights are held in. In bf16, a full fine-tune keeps fp32 master
    weights with bf16 math (autocast): bf16 weights alone lose most updates smaller than 1/256 of the
    weight, which a learning rate of 2e-5 makes the common case. Adapters train in fp32 on a bf16 base
    anyway (peft). `bf16: full` opts out, said once."""
    import torch

    if precision == "bf16" and not cfg.lora.adapter:
        if cfg.model.bf16 == "full":
            log.warning("`bf16: full`: training bf16 weights without fp32 master weights; updates smaller than "
                        "the bf16 step of a weight are lost.")
            return torch.bfloat16
        log.info("Full fine-tune in bf16: fp32 master weights, bf16 math")
        return torch.float32
    return torch_dtype(precision)


def resolve_tf32(model_cfg: ModelConfig) -> bool | None:
    """None leaves PyTorch's default alone."""
    import torch

    ampere = torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8
    if model_cfg.tf32 is True and not ampere:
        raise AxoError("`tf32: true` needs an NVIDIA Ampere or newer GPU. Fix: set `tf32: auto` or false.")
    return True if (model_cfg.tf32 is True or (model_cfg.tf32 == "auto" and ampere)) else None


@cache
def attention_backend(requested: str) -> str:
    """The attention backend this machine runs: the one asked for, or sdpa when that is a kernel that
    cannot run here. Every backend computes the same attention (packed rows included), so this only
    costs speed; it is said once."""
    import torch

    cuda = torch.cuda.is_available()
    missing = None
    if requested in BACKEND_NEEDS:
        module, package, needs_cuda = BACKEND_NEEDS[requested]
        missing = "a CUDA GPU" if needs_cuda and not cuda else (
            f"`{package}`" if importlib.util.find_spec(module) is None else None)
    elif requested == "flex_attention" and not cuda:
        missing = "a CUDA GPU (PyTorch has no FlexAttention backward on a CPU)"
    elif "/" in requested and (not cuda or importlib.util.find_spec("kernels") is None):
        missing = "a CUDA GPU and `pip install kernels`"
    if missing is None:
        return requested
    log.warning("`attn_implementation: %s` needs %s; training with sdpa, which computes the same attention "
                "more slowly. What is learned does not change.", requested, missing)
    return "sdpa"


def is_varlen(backend: str) -> bool:
    """Backends that find packed rows from position_ids only in a batch of one row (flash-attention
    and hub kernels); sdpa, eager and flex build a block mask from them at any batch size."""
    return backend in BACKEND_NEEDS or "/" in backend


@cache
def liger_available(asked: bool) -> bool:
    """`use_liger_kernel`: Liger's fused kernels where they can run, else the same math without them."""
    import torch

    if asked and (not torch.cuda.is_available() or importlib.util.find_spec("liger_kernel") is None):
        log.warning("`use_liger_kernel: true` needs a CUDA GPU and `pip install liger-kernel`; training without "
                    "Liger's kernels, which compute the same. What is learned does not change.")
        return False
    return asked


# optimizer name prefix -> (module it imports, pip package)
OPTIMIZER_NEEDS = {"schedule_free": ("schedulefree", "schedulefree"), "galore": ("galore_torch", "galore-torch"),
                   "apollo": ("apollo_torch", "apollo-torch"), "grokadamw": ("grokadamw", "grokadamw"),
                   "lomo": ("lomo_optim", "lomo-optim"), "adalomo": ("lomo_optim", "lomo-optim"),
                   "adamw_anyprecision": ("torchdistx", "torchdistx"), "stable_adamw": ("optimi", "torch-optimi")}
# optimizers whose implementation asserts CUDA (bitsandbytes' 8-bit GaLore, AdaLomo's kernels)
CUDA_OPTIMIZERS = ("adalomo", "galore_adamw_8bit", "galore_adamw_8bit_layerwise")


TRACKERS = {"mlflow": "mlflow", "wandb": "wandb", "tensorboard": "tensorboard", "swanlab": "swanlab",
            "comet_ml": "comet_ml", "trackio": "trackio"}  # report_to name -> module (= pip package)


def check_backends(cfg: Config) -> None:
    import torch

    cuda = torch.cuda.is_available()
    for tracker in cfg.logging.report_to:
        if importlib.util.find_spec(TRACKERS[tracker]) is None:
            raise AxoError(f"the config logs to {tracker} (`use_{tracker.split('_')[0]}` / its project key), but "
                           f"`{TRACKERS[tracker]}` is not installed, so the metrics would go nowhere. Fix: "
                           f"`pip install {TRACKERS[tracker]}`, or remove the tracker's keys.")
    for prefix, (module, package) in OPTIMIZER_NEEDS.items():
        if cfg.train.optimizer.startswith(prefix) and importlib.util.find_spec(module) is None:
            raise AxoError(f"`optimizer: {cfg.train.optimizer}` needs `pip install {package}`, which is not "
                           "installed; another optimizer would learn differently. Fix: install it (`pip install "
                           "'axo[optimizers]'` has them all), or pick adamw_torch.")
    scored = {"sacrebleu", "chrf", "ter"} & set(cfg.train.eval_causal_lm_metrics)
    if cfg.train.do_causal_lm_eval and scored and importlib.util.find_spec("sacrebleu") is None:
        raise AxoError(f"`eval_causal_lm_metrics` {sorted(scored)} are computed by the sacrebleu package, which is "
                       "not installed. Fix: pip install 'axo[eval]' (or sacrebleu), or keep exact_match / perplexity.")
    if cfg.train.lm_eval_tasks and cfg.train.lm_eval_post_train and importlib.util.find_spec("lm_eval") is None:
        raise AxoError("`lm_eval_tasks` are scored after training by lm-evaluation-harness, which is not installed. "
                       "Fix: pip install 'axo[eval]' (or lm-eval), or set `lm_eval_post_train: false`.")
    if cfg.train.optimizer in CUDA_OPTIMIZERS and not cuda:
        raise AxoError(f"`optimizer: {cfg.train.optimizer}` runs only on a CUDA GPU (its package asserts CUDA), and "
                       "this machine has none. Fix: a CUDA machine, or the same optimizer without 8-bit states "
                       "(galore_adamw, lomo) here.")
    if cfg.train.optimizer == "galore_adafactor_layerwise":
        raise AxoError("`optimizer: galore_adafactor_layerwise`: transformers builds it with both a learning rate and "
                       "Adafactor's relative step, which Adafactor refuses. Fix: galore_adafactor (one optimizer for "
                       "the whole model) or galore_adamw_layerwise.")
    hub = [f"`{k}: {v}`" for k, v in (("hub_model_id", cfg.train.hub_model_id),
                                      ("push_dataset_to_hub", cfg.data.push_dataset_to_hub)) if v]
    if hub:
        check_hub_push(" and ".join(hub))
    int4 = (cfg.quant.model_quantization_config_kwargs or {}).get("weight_dtype") == "int4"
    if cfg.quant.model_quantization_config and int4 and not cuda:
        raise AxoError("`model_quantization_config_kwargs: {weight_dtype: int4}` needs a CUDA GPU. "
                       "Fix: use weight_dtype: int8 on this machine.")
    if cfg.quant.gptq and not cuda:
        raise AxoError("`gptq: true`: GPTQ weights run only through CUDA kernels (gptqmodel), and this machine has "
                       "no CUDA GPU. Fix: a CUDA machine, or the unquantized model with `load_in_4bit: true, "
                       "adapter: qlora` (QLoRA runs on a CPU).")
    if cfg.quant.gptq and importlib.util.find_spec("gptqmodel") is None:
        raise AxoError("`gptq: true` needs `pip install gptqmodel` (transformers loads GPTQ checkpoints through it).")
    if cfg.quant.bitsandbytes and importlib.util.find_spec("bitsandbytes") is None:
        raise AxoError("`load_in_4bit` / `load_in_8bit` need `pip install bitsandbytes`.")


def check_hub_push(what: str) -> None:
    """Pushing needs the hub and a token: say so before hours of training, not after them."""
    import os

    from huggingface_hub import get_token

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise AxoError(f"{what} pushes to the Hugging Face hub, but HF_HUB_OFFLINE is set. Fix: unset it, or "
                       "remove the key and push later with `huggingface-cli upload`.")
    if get_token() is None:
        raise AxoError(f"{what} pushes to the Hugging Face hub, and no token is set. Fix: `huggingface-cli login` "
                       "or HF_TOKEN, or remove the key.")


def torch_dtype(precision: Precision):
    import torch

    # fp16 trains with autocast over fp32 weights: the grad scaler cannot step fp16 parameters.
    return {"bf16": torch.bfloat16, "fp16": torch.float32, "fp32": torch.float32}[precision]
