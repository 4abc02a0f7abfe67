"""Prompt/response text -> input_ids and labels, with the prompt masked (-100) unless
`train_on_inputs`. The response is always followed by EOS, which is always trained:
a model that never sees EOS as a target never learns to stop."""

IGNORE = -100


def tokenize_pair(tokenizer, prompt: str, response: str, train_on_inputs: bool) -> dict:
    # Tokenizing the two parts separately puts the mask boundary exactly between them;
    # inference tokenizes the prompt the same way, so what the model sees matches.
    prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    response_ids = response_ids + [tokenizer.eos_token_id]
    prompt_labels = list(prompt_ids) if train_on_inputs else [IGNORE] * len(prompt_ids)
    return {"input_ids": prompt_ids + response_ids, "labels": prompt_labels + response_ids}
