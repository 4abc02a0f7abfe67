"""Config -> model, through transformers: AutoConfig (with overrides), class selection, dtype,
placement, quantization and attention backend, then from_pretrained or from_config."""

import logging
import os
from pathlib import Path

from axo.config import Config
from axo.errors import AxoError
from axo.model.from_gguf import model_folder
from axo.model.preflight import Precision, attention_backend, torch_dtype
from axo.model.sources import from_source
from axo.model.tokenizer import load_tokenizer

log = logging.getLogger("axo")


def load_config(cfg: Config):
    import transformers

    m = cfg.model
    key = "base_model_config" if m.base_model_config else "base_model"
    path = m.base_model_config or model_folder(m)
    config = from_source(key, path, lambda: transformers.AutoConfig.from_pretrained(
        path, trust_remote_code=m.trust_remote_code, revision=m.model_revision))
    for name, value in (m.overrides_of_model_config or {}).items():
        setattr(config, name, value)
    if m.num_labels is not None:
        config.num_labels = m.num_labels
    method = (getattr(config, "quantization_config", None) or {})
    method = method.get("quant_method") if isinstance(method, dict) else getattr(method, "quant_method", None)
    if cfg.quant.gptq and str(method).lower() != "gptq":
        raise AxoError(f"`gptq: true`, but {m.base_model!r} is not a GPTQ checkpoint (its config.json has "
                       f"quantization_config.quant_method {method!r}). Fix: a GPTQ model, or remove `gptq`.")
    if m.task == "causal_lm" and (hasattr(config, "vision_config") or hasattr(config, "audio_config")):
        raise AxoError(f"`base_model` {m.base_model!r} is a multimodal model ({config.model_type}) that reads "
                       "images or audio. Fix: set `model_type: AutoModelForMultimodalLM`.")
    return config


def model_class(cfg: Config, config=None):
    """The class to load with: `model_type`'s, with linear experts for a linearized Llama 4."""
    import transformers

    cls = getattr(transformers, cfg.model.model_type, None)
    if cls is None:
        raise AxoError(f"`model_type`: transformers {transformers.__version__} has no class "
                       f"{cfg.model.model_type!r}. Fix: use an Auto class such as AutoModelForCausalLM.")
    if cfg.model.llama4_linearized_experts:
        from axo.model.llama4 import linearized_class

        return linearized_class(cls, config or load_config(cfg))
    return cls


def load_model(cfg: Config, precision: Precision, tokenizer=None, quantize: bool = True, dtype=None):
    """The base model, before adapters. `quantize=False` loads it in full precision (to merge a
    QLoRA adapter); `dtype` overrides the precision's (the trained model's master weights)."""
    import torch

    m = cfg.model
    config = load_config(cfg)
    cls = model_class(cfg, config)
    kwargs = {"dtype": dtype or torch_dtype(precision), "attn_implementation": attention_backend(m.attn_implementation),
              "trust_remote_code": m.trust_remote_code}
    if m.reinit_weights:  # (never with a quantized base: a config rule)
        torch.manual_seed(cfg.train.seed)
        model = cls.from_config(config, **kwargs)
        log.info("Built %s from its config with fresh random weights (reinit_weights)", config.model_type)
    else:
        kwargs.update(_placement(cfg, precision, quantize))
        folder = model_folder(m)
        model = from_source("base_model", folder, lambda: cls.from_pretrained(
            folder, config=config, revision=m.model_revision, **kwargs))
    if tokenizer is not None:
        _fit_vocabulary(model, tokenizer, m.resize_token_embeddings_to_32x, m.mean_resizing_embeddings)
    _say_who_read_the_weights()
    return model


def _say_who_read_the_weights() -> None:
    from transformers.distributed.utils import is_local_dist_rank_0
    from transformers.integrations import is_deepspeed_zero3_enabled, is_fsdp_enabled

    if is_deepspeed_zero3_enabled():
        log.info("DeepSpeed ZeRO-3 loaded the model partitioned across the processes")
    elif is_fsdp_enabled() and not is_local_dist_rank_0():
        log.info("Local rank %s read no weights: local rank 0 reads them and FSDP sends each process its shards "
                 "(cpu_ram_efficient_loading)", os.environ.get("LOCAL_RANK"))


def _placement(cfg: Config, precision: Precision, quantize: bool) -> dict:
    m = cfg.model
    kwargs = {k: v for k, v in {"device_map": m.device_map, "max_memory": m.max_memory,
                                "low_cpu_mem_usage": m.low_cpu_mem_usage}.items() if v is not None}
    if (cfg.parallel.tensor_parallel_size or 1) > 1:
        from transformers.distributed import DistributedConfig

        # transformers shards each layer's matrices by the model's own TP plan as it loads
        kwargs["distributed_config"] = DistributedConfig(tp_plan="auto", tp_size=cfg.parallel.tensor_parallel_size)
    if cfg.quant.dequantizes:
        from transformers import Mxfp4Config

        kwargs["quantization_config"] = Mxfp4Config(dequantize=True)  # full-precision weights from MXFP4 files
    elif cfg.quant.quantized and quantize:
        from axo.model.quantization import to_bnb_config, to_torchao_config

        kwargs["quantization_config"] = (to_bnb_config(cfg.quant, torch_dtype(precision)) if cfg.quant.bitsandbytes
                                         else to_torchao_config(cfg.quant))
    return {**kwargs, **(m.overrides_of_model_kwargs or {})}


def _fit_vocabulary(model, tokenizer, to_32x: bool = False, mean_resizing: bool = True) -> None:
    """Grow the embeddings for added tokens (to a multiple of 32 with resize_token_embeddings_to_32x);
    point the model's pad and generation settings at the tokenizer's."""
    embeddings = model.get_input_embeddings()
    wanted = -(-len(tokenizer) // 32) * 32 if to_32x else len(tokenizer)
    if embeddings is not None and wanted > embeddings.num_embeddings:
        # by default new rows start at the mean of the old ones, so new tokens begin as an average token
        model.resize_token_embeddings(wanted, mean_resizing=mean_resizing)
        log.info("Resized the embeddings to %d rows", wanted)
    if getattr(model.config, "pad_token_id", None) is None:  # (multimodal configs may not have one)
        model.config.pad_token_id = tokenizer.pad_token_id
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.pad_token_id = tokenizer.pad_token_id


def trained_model_dir(cfg: Config, checkpoint: str | None = None) -> Path | None:
    """The folder holding the trained model or adapter, if training has produced one."""
    folder = Path(checkpoint or cfg.train.output_dir)
    if (folder / "adapter_config.json").exists() or (folder / "config.json").exists():
        return folder
    return None


def holds_adapter(folder: Path) -> bool:
    """An adapter or a whole model: the run record says (a full fine-tune into a folder that held an
    adapter leaves the old adapter_config.json beside the new model), else the files do."""
    from axo.train.identity import trains_adapter

    recorded = trains_adapter(folder)
    return (folder / "adapter_config.json").exists() if recorded is None else recorded


def load_tokenizer_for_inference(cfg: Config, checkpoint: str | None = None):
    """The tokenizer load_for_inference would give, without the model."""
    import transformers

    folder = trained_model_dir(cfg, checkpoint)
    if folder is None:
        return load_tokenizer(cfg)
    return transformers.AutoTokenizer.from_pretrained(folder, trust_remote_code=cfg.model.trust_remote_code)


def load_for_inference(cfg: Config, checkpoint: str | None = None, quantize: bool = True):
    """(model, tokenizer, description): the trained model in output_dir (full or base + adapter),
    or the base model as training would start from it when nothing is trained yet."""
    import transformers

    from axo.model.preflight import resolve_precision

    precision = resolve_precision(cfg.model)
    folder = trained_model_dir(cfg, checkpoint)
    if checkpoint and folder is None:
        raise AxoError(f"{checkpoint!r} holds no model (config.json) or adapter (adapter_config.json).")
    adapter = folder is not None and holds_adapter(folder)
    if folder is None:
        tokenizer = load_tokenizer(cfg)
        model = load_model(cfg, precision, tokenizer, quantize)
        what = f"untrained base model ({cfg.model.base_model})"
        log.info("Nothing trained in %s yet: using the base model", cfg.train.output_dir)
    elif adapter:
        from peft import PeftModel

        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, trust_remote_code=cfg.model.trust_remote_code)
        model = PeftModel.from_pretrained(load_model(cfg, precision, tokenizer, quantize), folder)
        what = f"{cfg.model.base_model} + adapter {folder}"
    else:
        # a trained folder of a model with its own code needs the config's trust_remote_code, like the base
        trust = cfg.model.trust_remote_code
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder, trust_remote_code=trust)
        model = model_class(cfg).from_pretrained(folder, dtype=torch_dtype(precision), trust_remote_code=trust)
        what = f"trained model {folder}"
    model.eval()
    return model, tokenizer, what
