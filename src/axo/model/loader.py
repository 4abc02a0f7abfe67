"""Config -> tokenizer and model, through transformers' Auto classes."""

import logging
from pathlib import Path

from axo.config import Config
from axo.errors import AxoError
from axo.model.precision import Precision, torch_dtype

log = logging.getLogger("axo")


def load_tokenizer(cfg: Config):
    import transformers

    m = cfg.model
    cls = getattr(transformers, m.tokenizer_type, None)
    if cls is None:
        raise AxoError(f"`tokenizer_type`: transformers has no class {m.tokenizer_type!r}; "
                       "use AutoTokenizer.")
    tokenizer = _from_source("tokenizer_config" if m.tokenizer_config else "base_model",
                             m.tokenizer_path,
                             lambda: cls.from_pretrained(m.tokenizer_path, trust_remote_code=m.trust_remote_code))
    if tokenizer.eos_token_id is None:
        raise AxoError(f"the tokenizer of {m.tokenizer_path!r} has no eos_token, so the model "
                       "could not learn to stop. Fix: set one in its tokenizer_config.json.")
    if tokenizer.pad_token_id is None:
        # Reusing an existing token keeps the embedding matrix (and LoRA) unchanged. Labels are
        # padded by position (see Collator), so pad == eos does not stop EOS being trained.
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
        log.info("The tokenizer has no pad token; padding with %r", tokenizer.pad_token)
    tokenizer.padding_side = "right"
    if cfg.data.template_name:
        # Saved with the tokenizer, so the trained model chats with the template it learned.
        from axo.data.templates import resolve_template

        tokenizer.chat_template = resolve_template(cfg.data, None, tokenizer)
    return tokenizer


def load_model(cfg: Config, precision: Precision, tokenizer=None):
    import torch
    import transformers

    m = cfg.model
    source = "base_model_config" if m.base_model_config else "base_model"
    config = _from_source(source, m.config_path, lambda: transformers.AutoConfig.from_pretrained(
        m.config_path, trust_remote_code=m.trust_remote_code))
    cls = getattr(transformers, m.model_type, None)
    if cls is None:
        raise AxoError(f"`model_type`: transformers {transformers.__version__} has no class "
                       f"{m.model_type!r}. Fix: use AutoModelForCausalLM.")
    kwargs = {"dtype": torch_dtype(precision), "attn_implementation": m.attn_implementation}
    if m.reinit_weights:
        torch.manual_seed(cfg.train.seed)
        model = cls.from_config(config, trust_remote_code=m.trust_remote_code, **kwargs)
        log.info("Built %s from its config with fresh random weights (reinit_weights)", config.model_type)
    else:
        model = _from_source("base_model", m.base_model, lambda: cls.from_pretrained(
            m.base_model, config=config, trust_remote_code=m.trust_remote_code, **kwargs))
    if tokenizer is not None and model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
        if model.generation_config is not None:
            model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def _from_source(key: str, path: str, load):
    """Run a from_pretrained call; turn "not found / offline" into an error naming the key."""
    try:
        return load()
    except OSError as err:
        where = "a local folder" if Path(path).expanduser().exists() else "a hub id"
        raise AxoError(
            f"`{key}`: could not load {path!r} ({where}): {str(err).splitlines()[0]}\n"
            "Fix: point it at a local folder with config.json and the weights, or check the "
            "hub id and your network (HF_HUB_OFFLINE=1 allows only cached models)."
        ) from None


def trained_model_dir(cfg: Config, checkpoint: str | None = None) -> Path | None:
    """The folder holding the trained model or adapter, if training has produced one."""
    folder = Path(checkpoint or cfg.train.output_dir)
    if (folder / "adapter_config.json").exists() or (folder / "config.json").exists():
        return folder
    return None


def load_for_inference(cfg: Config, checkpoint: str | None = None):
    """(model, tokenizer, description): the trained model in output_dir (full or base + adapter),
    or the base model as training would start from it when nothing is trained yet."""
    import transformers

    from axo.model.precision import resolve_precision

    precision = resolve_precision(cfg.model)
    folder = trained_model_dir(cfg, checkpoint)
    if checkpoint and folder is None:
        raise AxoError(f"{checkpoint!r} holds no model (config.json) or adapter (adapter_config.json).")
    if folder is None:
        tokenizer = load_tokenizer(cfg)
        model = load_model(cfg, precision, tokenizer)
        what = f"untrained base model ({cfg.model.base_model})"
        log.info("Nothing trained in %s yet: using the base model", cfg.train.output_dir)
    elif (folder / "adapter_config.json").exists():
        from peft import PeftModel

        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        model = PeftModel.from_pretrained(load_model(cfg, precision, tokenizer), folder)
        what = f"{cfg.model.base_model} + adapter {folder}"
    else:
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype(precision))
        what = f"trained model {folder}"
    model.eval()
    return model, tokenizer, what
