"""Image + text rows for image-text-to-text models. Rows stay raw until batching: the collator
renders each conversation (the same turn-by-turn masking as text chat), then lets the model's
processor insert the image tokens and pixel values, and carries the labels across that expansion.
While preparing, each row is read the same way once to check it and to measure its length after
the processor's expansion, so `sequence_len` and the other length keys mean what they mean for text."""

from pathlib import Path

import torch

from axo.data.formats import chat_template
from axo.data.formats.base import Context, RowError
from axo.data.rows import RowKind
from axo.data.tokenize import IGNORE, encode
from axo.errors import AxoError


def load_image(value, data=None):
    """The row's image as RGB, resized as `image_size` says (`data`: the DataConfig)."""
    from PIL import Image

    if isinstance(value, Image.Image):
        return _resized(value.convert("RGB"), data)
    if isinstance(value, dict) and value.get("path"):  # datasets' Image feature, undecoded
        value = value["path"]
    if isinstance(value, str) and Path(value).is_file():
        try:
            return _resized(Image.open(value).convert("RGB"), data)
        except OSError as err:
            raise RowError("images", f"{value!r} is not a readable image ({err})", "Fix or remove the file.") from None
    raise RowError("images", f"{str(value)[:80]!r} is neither a readable file nor an image",
                   "Fix the `images` column (paths relative to where axo runs, or images).")


def _resized(image, data):
    """`image_size` as Axolotl reads it: a number, the image fitted inside that square with its aspect
    kept and padded black; [width, height], resized to exactly that."""
    size = data.image_size if data is not None else None
    if size is None:
        return image
    from PIL import Image, ImageOps

    resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}[data.image_resize_algorithm]
    if isinstance(size, int):
        return ImageOps.pad(image, (size, size), method=resample, color=(0, 0, 0))
    return image.resize(tuple(size), resample)


class ImageRows(RowKind):
    STATS = ("trained",)

    def columns(self, raw) -> list[str]:
        return list(raw.column_names)

    def read(self, row: dict) -> dict:
        segments = chat_template.segments(row, self.ctx)
        images = [load_image(v, self.cfg.data) for v in row.get("images") or []]
        text = "".join(piece for piece, _ in segments)
        expanded = self.ctx.processor(text=[text], images=[images] if images else None)["input_ids"][0]
        [(_, labels)] = encode(self.ctx.tokenizer, [segments], False, self.cfg.data.train_on_inputs)
        return {**row, "length": len(expanded), "trained": sum(1 for t in labels if t != IGNORE)}

    def prompt(self, text: str) -> tuple[str, bool]:
        return chat_template.prompt(text, self.ctx), False


class VisionCollator:
    def __init__(self, processor, ctx: Context, train_on_inputs: bool = False):
        self.processor, self.ctx, self.train_on_inputs = processor, ctx, train_on_inputs
        self.image_token_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        segments, images = [], []
        for row in rows:  # prepared rows: each was read this way once already
            segments.append(chat_template.segments(row, self.ctx))
            images.append([load_image(v, self.ctx.data) for v in row.get("images") or []])
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
