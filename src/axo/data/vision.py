"""Image + text rows for image-text-to-text models. Rows stay raw until batching: the collator
renders each conversation (the same turn-by-turn masking as text chat), then lets the model's
processor insert the image tokens and pixel values, and carries the labels across that expansion."""

from pathlib import Path

import torch

from axo.data.formats import Context, RowError
from axo.data.formats import chat_template
from axo.data.tokenize import IGNORE, encode
from axo.errors import AxoError


def load_image(value, row_index: int):
    from PIL import Image

    if isinstance(value, Image.Image):
        return value.convert("RGB")
    if isinstance(value, dict) and value.get("path"):  # datasets' Image feature, undecoded
        value = value["path"]
    if isinstance(value, str) and Path(value).is_file():
        return Image.open(value).convert("RGB")
    raise AxoError(f"row {row_index}: image {str(value)[:80]!r} is neither a readable file nor an image. "
                   "Fix the `images` column (paths relative to where axo runs, or images).")


class VisionCollator:
    def __init__(self, processor, ctx: Context, train_on_inputs: bool = False):
        self.processor, self.ctx, self.train_on_inputs = processor, ctx, train_on_inputs
        self.image_token_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        segments, images = [], []
        for i, row in enumerate(rows):
            try:
                segments.append(chat_template.segments(row, self.ctx))
            except RowError as err:
                raise AxoError(f"image row: field {err.field!r} {err.problem}. {err.fix}") from None
            images.append([load_image(v, i) for v in row.get("images") or []])
        texts = ["".join(text for text, _ in segs) for segs in segments]
        unexpanded = encode(self.processor.tokenizer, segments, False, self.train_on_inputs)
        batch = self.processor(text=texts, images=[imgs or None for imgs in images] if any(images) else None,
                               padding=True, return_tensors="pt")
        batch["labels"] = torch.stack([
            self._expand(ids, labels, row_ids) for (ids, labels), row_ids in zip(unexpanded, batch["input_ids"])])
        return dict(batch)

    def _expand(self, ids: list[int], labels: list[int], processed: torch.Tensor) -> torch.Tensor:
        """Labels for the processor's ids: they are our ids with each image token repeated for its
        patches (and padding), so walk both; image and padding positions are never trained."""
        out = torch.full_like(processed, IGNORE)
        j = 0
        for i, token in enumerate(processed.tolist()):
            if j < len(ids) and token == ids[j]:
                out[i] = labels[j] if token != self.image_token_id else IGNORE
                j += 1 if token != self.image_token_id or self._run_ends(processed, i) else 0
        if j != len(ids):
            raise AxoError("the processor changed the text beyond inserting image tokens, so labels cannot "
                           "be placed. Fix: use the processor's own chat template.")
        return out

    def _run_ends(self, processed: torch.Tensor, i: int) -> bool:
        return i + 1 >= len(processed) or processed[i + 1].item() != self.image_token_id


def vision_context(cfg, processor) -> Context:
    """The chat context of the first dataset, rendered with the processor's template unless the
    config names one (image parts need a template that knows them)."""
    from dataclasses import replace

    from axo.data.rows import format_context

    ds = cfg.data.datasets[0]
    own = ds.chat_template or ds.chat_template_jinja or cfg.data.template_name
    ctx = format_context(cfg, ds, processor.tokenizer) if own else None
    template = ctx.template if ctx else processor.chat_template
    if not template:
        raise AxoError("the processor has no chat template: set `chat_template` or `chat_template_jinja`.")
    from axo.data.templates import end_of_turn_tokens

    eot = tuple(end_of_turn_tokens(cfg.data, template, processor.tokenizer))
    return replace(ctx, template=template, eot=eot) if ctx else Context(ds, cfg.data, processor.tokenizer, template, eot)
