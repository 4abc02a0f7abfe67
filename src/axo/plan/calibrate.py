"""`axo plan --measure`: the throughput this machine reaches on this model's own layers. A copy of
the model with two of its layers, random weights (nothing read), trains a few micro-batches of the
configured shape; FLOPs per token over seconds per token is what a step of the whole model will
run at."""

import copy
import time

from axo.config import Config
from axo.plan.estimate import Setup, flops_per_token

LAYERS = 2
REPEATS = 3


def achieved_flops(cfg: Config, setup: Setup) -> float:
    import torch

    from axo.model.loader import load_config, model_class
    from axo.plan.estimate import _with_adapter

    config = copy.deepcopy(load_config(cfg))
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    text.num_hidden_layers = min(LAYERS, text.num_hidden_layers)
    if isinstance(getattr(text, "layer_types", None), list):
        text.layer_types = text.layer_types[:text.num_hidden_layers]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[setup.precision]
    cls = model_class(cfg, config)
    build = getattr(cls, "from_config", None) or cls._from_config
    model = build(config, dtype=dtype).to(device)
    if setup.adapter:
        model = _with_adapter(model, cfg, setup)
    if setup.checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    ids = torch.randint(0, text.vocab_size, (setup.micro_batch, setup.sequence_len), device=device)
    seconds = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        model(input_ids=ids, labels=ids).loss.backward()
        if device == "cuda":
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
    per_micro_batch = min(seconds[1:])  # the first includes warm-up (kernel choice, allocation)
    return flops_per_token(model, cfg, setup) * setup.micro_batch * setup.sequence_len / per_micro_batch
