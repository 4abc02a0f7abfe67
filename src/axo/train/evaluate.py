"""Eval loss, perplexity and, on request, exact-match accuracy of generated answers."""

import logging
import math

from axo.config import Config
from axo.data.tokenize import IGNORE
from axo.errors import AxoError
from axo.methods import training_name

log = logging.getLogger("axo")


def evaluate(cfg: Config, checkpoint: str | None = None, exact_match: bool = False,
             limit: int | None = None) -> dict:
    from axo.data.chat import load_processing
    from axo.data.collator import Collator
    from axo.data.prepare import prepare
    from axo.model.loader import load_for_inference

    if not cfg.method.axo_batches or cfg.model.task != "causal_lm":
        raise AxoError("`axo evaluate` scores a causal LM on SFT rows; this config trains "
                       f"{training_name(cfg.method)} ({cfg.method.summary}), whose trainer reports its own eval "
                       "metrics during training: set `val_set_size` (or `test_datasets`) and `eval_steps`.")
    model, tokenizer, what = load_for_inference(cfg, checkpoint)
    text = load_processing(cfg, tokenizer)
    data = prepare(cfg, tokenizer, text.chat)
    if data.eval is None:
        raise AxoError("there is no eval split: set `test_datasets` or `val_set_size`.")
    rows = data.eval.select(range(min(limit, len(data.eval)))) if limit else data.eval
    log.info("Evaluating the %s on %d rows", what, len(rows))

    loss = eval_loss(model, rows, Collator(tokenizer.pad_token_id),
                     cfg.train.eval_batch_size or cfg.train.micro_batch_size)
    metrics = {"model": what, "eval_rows": len(rows), "eval_loss": loss, "perplexity": math.exp(loss)}
    if exact_match:
        if cfg.data.train_on_inputs:
            raise AxoError("--exact-match needs `train_on_inputs: false` to tell prompt from answer.")
        metrics["exact_match"] = exact_match_accuracy(model, tokenizer, rows)
    return metrics


def eval_loss(model, rows, collator, batch_size: int) -> float:
    """Mean loss per trained token over all rows (not a mean of batch means). A plain loop rather
    than Trainer.evaluate, which refuses quantized models such as output_dir/quantized."""
    import torch

    total, count = 0.0, 0
    for start in range(0, len(rows), batch_size):
        batch = collator([rows[i] for i in range(start, min(start + batch_size, len(rows)))])
        labels = batch.pop("labels").to(model.device)
        with torch.no_grad():
            logits = model(**{k: v.to(model.device) for k, v in batch.items()}).logits.float()
        targets = labels[:, 1:].reshape(-1)
        total += torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), targets,
                                                   ignore_index=IGNORE, reduction="sum").item()
        count += int((targets != IGNORE).sum())
    return total / max(count, 1)


def first_answer(labels: list[int]) -> tuple[int, int] | None:
    """(start, end) of a row's first run of trained tokens: its first answer, end token included."""
    start = next((i for i, t in enumerate(labels) if t != IGNORE), None)
    if start is None:
        return None
    return start, next((i for i in range(start, len(labels)) if labels[i] == IGNORE), len(labels))


def exact_match_accuracy(model, tokenizer, rows) -> float:
    """Greedy-generate the first trained answer of each row from the text before it and compare
    token for token, end token included: an answer that does not stop is wrong."""
    import torch

    hits = 0
    for row in rows:
        span = first_answer(row["labels"])
        if span is None:  # nothing to answer (prepared rows always have a trained token)
            continue
        start, end = span
        prompt = torch.tensor([row["input_ids"][:start]], device=model.device)
        expected = row["input_ids"][start:end]  # the first answer, through its end token
        with torch.no_grad():
            out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt),
                                 max_new_tokens=len(expected), do_sample=False,
                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        hits += out[0, start:].tolist() == expected
    return hits / max(len(rows), 1)
