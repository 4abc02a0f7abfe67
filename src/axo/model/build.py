"""The model a recipe trains, assembled the same way for every method."""

import logging

from axo.config import Config

log = logging.getLogger("axo")


def trainable_model(cfg: Config, precision, tokenizer, stop_tokens: tuple[str, ...] = ()):
    """Loaded (with new token rows), stopping where the chat template ends turns, fake-quantized
    for QAT (before patches, which hold on to the output head, and before the adapter, which
    learns around the rounded base), patched, and wrapped in its adapter, whose trainable rows
    include the added tokens'."""
    from axo.model.adapters import apply_adapter
    from axo.model.checks import align_end_tokens
    from axo.model.loader import load_config, load_model
    from axo.model.patches import apply_patches
    from axo.model.preflight import weights_dtype

    config = load_config(cfg)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    vocab_before = text.vocab_size
    model = load_model(cfg, precision, tokenizer, dtype=weights_dtype(cfg, precision))
    align_end_tokens(tokenizer, model, stop_tokens or (tokenizer.eos_token,))
    if cfg.quant.qat:
        from axo.model.qat import prepare_qat

        prepare_qat(model, cfg.quant.qat)
    apply_patches(model, cfg)
    model = apply_adapter(model, cfg, new_token_ids=range(vocab_before, len(tokenizer)))
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("Parameters: %s trainable of %s (%.2f%%)", f"{trainable:,}", f"{total:,}", 100 * trainable / max(total, 1))
    return model
