"""Fold a LoRA (or QLoRA) adapter into its base model: a plain transformers model in output_dir/merged."""

import logging
from pathlib import Path

from axo.config import Config
from axo.errors import AxoError

log = logging.getLogger("axo")


def merge_lora(cfg: Config, checkpoint: str | None = None) -> Path:
    model, tokenizer = load_merged(cfg, Path(checkpoint or cfg.train.output_dir))
    if cfg.model.llama4_linearized_experts:  # the merged model loads in plain transformers
        from axo.model.llama4 import fuse_experts

        fuse_experts(model)
    out = Path(cfg.train.output_dir) / "merged"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def load_merged(cfg: Config, folder: Path):
    """(model, tokenizer): the base with the adapter in `folder` folded in, in full precision."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    from axo.model.loader import load_model
    from axo.model.preflight import resolve_precision

    if not (folder / "adapter_config.json").exists():
        raise AxoError(f"{folder} holds no LoRA adapter (adapter_config.json). Train with "
                       "`adapter: lora` first, or pass --checkpoint to the adapter's folder.")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    base = load_model(cfg, resolve_precision(cfg.model), tokenizer)
    if cfg.quant.quantized:
        # QLoRA learned its update against the quantized weights: merge into exactly those,
        # dequantized to full precision, so the merged model computes what was trained.
        dequantize_by_probing(base)
        log.info("Dequantized the quantized base model to merge in full precision")
    return PeftModel.from_pretrained(base, folder).merge_and_unload(), tokenizer


def dequantize_by_probing(model) -> None:
    """Replace each bitsandbytes layer with an nn.Linear holding the matrix the layer applies,
    read off by passing it the identity: layer(I) = W^T (+ bias). This is exact by construction
    on any backend, where bitsandbytes 0.50's own dequantize_4bit returns wrongly laid-out
    weights on CPU (144% off in our check) and transformers' model.dequantize() with it. torchao
    weight-only layers are read the same way."""
    import torch

    # the dense layers take the dtype of the rest of the model (its embeddings), not torch's default
    model_dtype = model.get_input_embeddings().weight.dtype
    for name, layer in list(model.named_modules()):
        if not _is_quantized_linear(layer):
            continue
        with torch.no_grad():
            dtype = getattr(layer, "compute_dtype", None) or torch.float32
            probe = torch.eye(layer.in_features, dtype=dtype, device=layer.weight.device)
            applied = layer(probe).float()
            bias = layer.bias.float() if layer.bias is not None else None
            dense = torch.nn.Linear(layer.in_features, layer.out_features, bias=bias is not None,
                                    device=applied.device, dtype=model_dtype)
            dense.weight.copy_((applied - bias if bias is not None else applied).T)
            if bias is not None:
                dense.bias.copy_(bias)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, dense)
    model.config.quantization_config = None
    if hasattr(model, "hf_quantizer"):
        model.hf_quantizer = None
    model.is_quantized = False


def _is_quantized_linear(layer) -> bool:
    import torch

    if type(layer).__module__.startswith("bitsandbytes"):
        return hasattr(layer, "in_features")
    # torchao keeps nn.Linear and swaps the weight for a quantized tensor subclass
    return isinstance(layer, torch.nn.Linear) and type(layer.weight.data) not in (torch.Tensor, torch.nn.Parameter)


def merge_fsdp_shards(cfg: Config, checkpoint: str | None = None) -> Path:
    """Join an FSDP checkpoint's per-rank shards (pytorch_model_fsdp_0/) into one plain
    transformers model in output_dir/merged, with the base model's config and the tokenizer."""
    from accelerate.utils import merge_fsdp_weights
    from transformers import AutoConfig
    from transformers.trainer_utils import get_last_checkpoint

    from axo.data.chat import load_processing
    from axo.model.loader import load_config

    folder = Path(checkpoint) if checkpoint else Path(get_last_checkpoint(cfg.train.output_dir) or cfg.train.output_dir)
    shards = sorted(folder.glob("pytorch_model_fsdp_*"))
    if not shards:
        raise AxoError(f"{folder} holds no sharded FSDP weights (pytorch_model_fsdp_0/). They are written with "
                       "`fsdp_config.state_dict_type: SHARDED_STATE_DICT`; pass --checkpoint to such a folder.")
    out = Path(cfg.train.output_dir) / "merged"
    merge_fsdp_weights(str(shards[0]), str(out), safe_serialization=True)
    config_dir = folder if (folder / "config.json").exists() else None
    (AutoConfig.from_pretrained(config_dir) if config_dir else load_config(cfg)).save_pretrained(out)
    load_processing(cfg).tokenizer.save_pretrained(out)  # with the run's chat template, as training saved it
    log.info("Merged %d-rank shards of %s into %s", len(list(shards[0].glob("*.distcp"))), folder, out)
    return out
