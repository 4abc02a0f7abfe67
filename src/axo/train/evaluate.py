"""Eval loss, perplexity and, on request, exact-match accuracy of generated answers."""

import logging
import math

from axo.config import Config
from axo.data.tokenize import IGNORE
from axo.errors import AxoError

log = logging.getLogger("axo")


def evaluate(cfg: Config, checkpoint: str | None = None, exact_match: bool = False,
             limit: int | None = None) -> dict:
    import torch
    from transformers import Trainer, TrainingArguments

    from axo.data.collator import Collator
    from axo.data.prepare import prepare
    from axo.model.loader import load_for_inference

    model, tokenizer, what = load_for_inference(cfg, checkpoint)
    data = prepare(cfg, tokenizer)
    if data.eval is None:
        raise AxoError("there is no eval split: set `test_datasets` or `val_set_size`.")
    rows = data.eval.select(range(min(limit, len(data.eval)))) if limit else data.eval
    log.info("Evaluating the %s on %d rows", what, len(rows))

    args = TrainingArguments(
        output_dir=cfg.train.output_dir, report_to="none", dataloader_pin_memory=torch.cuda.is_available(),
        per_device_eval_batch_size=cfg.train.eval_batch_size or cfg.train.micro_batch_size,
    )
    trainer = Trainer(model=model, args=args, data_collator=Collator(tokenizer.pad_token_id))
    loss = trainer.evaluate(rows)["eval_loss"]
    metrics = {"model": what, "eval_rows": len(rows), "eval_loss": loss, "perplexity": math.exp(loss)}
    if exact_match:
        if cfg.data.train_on_inputs:
            raise AxoError("--exact-match needs `train_on_inputs: false` to tell prompt from answer.")
        metrics["exact_match"] = exact_match_accuracy(model, tokenizer, rows)
    return metrics


def exact_match_accuracy(model, tokenizer, rows) -> float:
    """Greedy-generate the first trained answer of each row from the text before it and compare
    token for token, end token included: an answer that does not stop is wrong."""
    import torch

    hits = 0
    for row in rows:
        labels = row["labels"]
        start = next(i for i, t in enumerate(labels) if t != IGNORE)
        end = next((i for i in range(start, len(labels)) if labels[i] == IGNORE), len(labels))
        prompt = torch.tensor([row["input_ids"][:start]], device=model.device)
        expected = row["input_ids"][start:end]  # the first answer, through its end token
        with torch.no_grad():
            out = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt),
                                 max_new_tokens=len(expected), do_sample=False,
                                 eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        hits += out[0, start:].tolist() == expected
    return hits / max(len(rows), 1)
