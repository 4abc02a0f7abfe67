"""Agreement between the chat template's end-of-turn token, the tokenizer's EOS and the model's
generation_config: when they disagree, a trained chat model does not stop where it was trained
to stop. axo explains the consequence, and fixes what it can in the generation_config it saves."""

import logging

log = logging.getLogger("axo")


def align_end_tokens(tokenizer, model, stop_tokens: tuple[str, ...]) -> list[str]:
    """Make generation stop at every token of `stop_tokens` (EOS and the chat template's
    end-of-turn markers, from axo.data.chat); return the warnings given."""
    gen = getattr(model, "generation_config", None)
    if gen is None:
        return []
    stop = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    stop = [i for i in stop if i is not None]
    warnings = []
    for token in stop_tokens:
        ids = tokenizer.convert_tokens_to_ids([token]) if token in tokenizer.get_vocab() else []
        if not ids:
            warnings.append(
                f"the end-of-turn marker {token!r} is not one token in this vocabulary, so generation cannot stop "
                f"on it and a chat model will run on past its turn. Fix: add it with `special_tokens: "
                f"{{additional_special_tokens: [{token!r}]}}` (or `tokens:`), or pick a template whose markers exist.")
        elif ids[0] not in stop:
            stop.append(ids[0])
            if token != tokenizer.eos_token:
                log.info("generation_config now also stops at %r, the chat template's end of turn "
                         "(tokenizer eos is %r)", token, tokenizer.eos_token)
    gen.eos_token_id = stop if len(stop) > 1 else stop[0]
    for message in warnings:
        log.warning(message)
    return warnings
