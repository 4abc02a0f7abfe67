"""Tokenizer (and processor) loading with the config's fixes: special tokens, added tokens,
renamed tokens, and a pad token that never masks EOS."""

import difflib
import logging

from axo.config import Config
from axo.errors import AxoError
from axo.model.from_gguf import model_folder
from axo.model.sources import from_source

log = logging.getLogger("axo")


def load_tokenizer(cfg: Config):
    import transformers

    m = cfg.model
    cls = getattr(transformers, m.tokenizer_type, None)
    if cls is None:
        raise AxoError(f"`tokenizer_type`: transformers has no class {m.tokenizer_type!r}; use AutoTokenizer.")
    key = "tokenizer_config" if m.tokenizer_config else "base_model"
    kwargs = {} if m.tokenizer_legacy is None else {"legacy": m.tokenizer_legacy}
    if cls is transformers.AutoTokenizer:  # with mistral-common installed, transformers would pick its
        kwargs["mistral_format"] = False   # backend for a tekken.json folder: no offsets, no masks
    folder = tokenizer_folder(m)
    if m.tokenizer_use_mistral_common:
        tokenizer = from_source(key, folder, lambda: mistral_common_tokenizer(cfg))
    else:
        tokenizer = from_source(key, folder, lambda: cls.from_pretrained(
            folder, trust_remote_code=m.trust_remote_code,
            revision=None if m.tokenizer_config else m.model_revision, **kwargs))
    tokenizer = _rename_added_tokens(tokenizer, m.added_tokens_overrides or {})
    if m.special_tokens:
        tokenizer.add_special_tokens({k: v for k, v in m.special_tokens.model_dump().items() if v})
    if m.tokens:
        added = tokenizer.add_tokens(m.tokens)
        log.info("Added %d new tokens to the vocabulary (%d were already there)", added, len(m.tokens) - added)
    if tokenizer.eos_token_id is None and m.task == "causal_lm":
        raise AxoError(f"the tokenizer of {folder!r} has no eos_token, so the model could not learn "
                       "to stop. Fix: set `special_tokens: {eos_token: ...}`.")
    if tokenizer.pad_token_id is None:
        # Reusing an existing token keeps the embedding matrix (and LoRA) unchanged. Labels are
        # padded by position (see Collator), so pad == eos does not stop EOS being trained.
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
        log.info("The tokenizer has no pad token; padding with %r", tokenizer.pad_token)
    tokenizer.padding_side = "right"
    return tokenizer  # its chat template is the run's, set by axo.data.chat.setup_chat


def tokenizer_folder(m) -> str:
    return m.tokenizer_config or model_folder(m)


def mistral_common_tokenizer(cfg: Config):
    """`tokenizer_use_mistral_common`: the fast tokenizer transformers builds from the folder's
    tekken.json, with the chat template mistral-common writes for it (unless the folder has its own
    chat_template.jinja). axo places label masks by character offsets, which mistral-common's own
    backend does not give; axo.data.chat checks that the two encode conversations identically."""
    from transformers.integrations.mistral import convert_tekken_tokenizer

    _require_mistral_common()
    return convert_tekken_tokenizer(mistral_file(cfg))


def mistral_reference(cfg: Config):
    """mistral-common's own encoder for the folder's tekken.json, in fine-tuning mode (a
    conversation may end with the assistant's answer)."""
    from pathlib import Path

    from transformers import AutoTokenizer

    _require_mistral_common()
    return AutoTokenizer.from_pretrained(str(Path(mistral_file(cfg)).parent), mistral_format=True, mode="finetuning")


def mistral_file(cfg: Config) -> str:
    from transformers.utils import cached_file

    m = cfg.model
    folder = tokenizer_folder(m)
    found = cached_file(folder, "tekken.json", revision=None if m.tokenizer_config else m.model_revision,
                        _raise_exceptions_for_missing_entries=False)
    if found is None:
        raise AxoError(f"`tokenizer_use_mistral_common`: {folder!r} has no tekken.json (Mistral's "
                       "tokenizer file). Fix: point `base_model` (or `tokenizer_config`) at a Mistral folder that "
                       "has it, or remove the key to use the folder's tokenizer.json.")
    return found


def _require_mistral_common() -> None:
    from importlib.util import find_spec

    if find_spec("mistral_common") is None:
        raise AxoError("`tokenizer_use_mistral_common` needs the mistral-common package. Fix: "
                       "pip install 'axo[mistral]' (or pip install mistral-common).")


def _rename_added_tokens(tokenizer, overrides: dict[int, str]):
    """added_tokens_overrides: give reserved added tokens a new text (same id, same embedding).
    Done on the saved files (tokenizer.json, tokenizer_config.json) and reloaded, through public APIs."""
    import json
    import tempfile
    from pathlib import Path

    if not overrides:
        return tokenizer
    missing = [i for i in overrides if i not in tokenizer.added_tokens_decoder]
    if missing:
        raise AxoError(f"`added_tokens_overrides`: ids {missing} are not added tokens of this tokenizer; "
                       "only added (special) tokens can be renamed.")
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        path = Path(tmp) / "tokenizer.json"
        state = json.loads(path.read_text())
        for entry in state["added_tokens"]:
            if entry["id"] in overrides:
                old, entry["content"] = entry["content"], overrides[entry["id"]]
                vocab = state["model"].get("vocab")
                if isinstance(vocab, dict) and old in vocab:
                    vocab[entry["content"]] = vocab.pop(old)
        path.write_text(json.dumps(state))
        config_path = Path(tmp) / "tokenizer_config.json"
        config = json.loads(config_path.read_text())
        for token_id, text in overrides.items():
            if str(token_id) in config.get("added_tokens_decoder", {}):
                config["added_tokens_decoder"][str(token_id)]["content"] = text
        config_path.write_text(json.dumps(config))
        renamed = type(tokenizer).from_pretrained(tmp)
    log.info("Renamed added tokens %s", overrides)
    return renamed


def load_processor(cfg: Config, tokenizer):
    """The processor of a multimodal (image or audio) model, with axo's tokenizer inside it."""
    import transformers

    m = cfg.model
    cls = getattr(transformers, m.processor_type, None)
    if cls is None:
        raise AxoError(f"`processor_type`: transformers has no class {m.processor_type!r}; use AutoProcessor.")
    options = m.processor_kwargs or {}
    folder = tokenizer_folder(m)
    processor = from_source("base_model", folder, lambda: cls.from_pretrained(
        folder, trust_remote_code=m.trust_remote_code, revision=m.model_revision, **options))
    _check_options(processor, options)
    # transformers keeps from_pretrained's options in the tokenizer's init_kwargs, where every call reads
    # them as defaults and save_pretrained writes them (so the trained model processes as trained)
    tokenizer.init_kwargs.update(options)
    processor.tokenizer = tokenizer
    return processor


def _check_options(processor, options: dict) -> None:
    """from_pretrained takes any name and drops the ones no part of the processor has: a typo would
    silently process images some other way than asked."""
    known = set(processor.to_dict())
    for part in ("image_processor", "feature_extractor", "video_processor"):
        part = getattr(processor, part, None)
        valid = getattr(part, "valid_kwargs", None)
        known |= set(getattr(valid, "__annotations__", {})) | (set(part.to_dict()) if part is not None else set())
    unknown = sorted(set(options) - known)
    if unknown:
        close = {k: difflib.get_close_matches(k, sorted(known), n=1) for k in unknown}
        hints = "; ".join(f"{k!r}" + (f" (did you mean {c[0]!r}?)" if c else "") for k, c in close.items())
        raise AxoError(f"`processor_kwargs`: {type(processor).__name__} has no option {hints}. Its options: "
                       + ", ".join(sorted(k for k in known if not k.startswith("_"))) + ".")
