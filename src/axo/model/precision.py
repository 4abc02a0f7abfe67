"""Preflight: turn `bf16` / `fp16` into the precision this machine will actually train in.
Kept out of config parsing so that validating a config never depends on the hardware."""

import logging
from typing import Literal

from axo.config.model import ModelConfig
from axo.errors import AxoError

log = logging.getLogger("axo")
Precision = Literal["bf16", "fp16", "fp32"]


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
            log.warning("`bf16: true` on a CPU: expect it to be much slower than fp32 "
                        "(`bf16: auto` would pick fp32 here).")
        return "bf16"
    return "fp32"


def torch_dtype(precision: Precision):
    import torch

    # fp16 trains with autocast over fp32 weights: the grad scaler cannot step fp16 parameters.
    return {"bf16": torch.bfloat16, "fp16": torch.float32, "fp32": torch.float32}[precision]
