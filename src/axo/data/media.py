"""Rows with images or audio for multimodal models: `{type: image}` parts take the row's `images`
column in order, `{type: audio}` parts its `audios`. Rows stay raw until batching: the collator
renders each conversation (the same turn-by-turn masking as text chat), then lets the model's
processor insert the image or audio tokens and their features, and carries the labels across that
expansion. While preparing, each row is read the same way once to check it (a file that does not
decode is that row's error) and to measure its length after the processor's expansion, so
`sequence_len` and the other length keys mean what they mean for text."""

import logging
from pathlib import Path

import torch

from axo.data.formats import chat_template
from axo.data.formats.base import Context, RowError
from axo.data.rows import RowKind
from axo.data.tokenize import IGNORE, encode
from axo.errors import AxoError

log = logging.getLogger("axo")


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


def load_audio(value, processor):
    """The row's audio as a mono waveform at the processor's sampling rate."""
    from transformers.audio_utils import load_audio as decode

    try:
        import soundfile  # noqa: F401  (what transformers decodes files with here)
    except ImportError:
        raise AxoError("rows with `audios` need the soundfile package. Fix: pip install 'axo[audio]'.") from None

    rate = processor.feature_extractor.sampling_rate
    if isinstance(value, dict) and value.get("array") is not None:  # datasets' Audio feature, decoded
        import numpy as np
        import soxr

        array = np.asarray(value["array"], dtype=np.float32)
        return array if value.get("sampling_rate", rate) == rate else soxr.resample(array, value["sampling_rate"], rate)
    if isinstance(value, dict) and value.get("path"):
        value = value["path"]
    if not (isinstance(value, str) and Path(value).is_file()):
        raise RowError("audios", f"{str(value)[:80]!r} is not a readable file",
                       "Fix the `audios` column (paths relative to where axo runs).")
    try:
        return decode(value, sampling_rate=rate)
    except Exception as err:  # soundfile's and the resampler's errors have no common base
        raise RowError("audios", f"{value!r} is not a readable audio file ({err})",
                       "Fix or remove the file.") from None


def media(row: dict, processor, data=None) -> dict:
    """The processor's keyword arguments for one row's images and audio (none when it has neither)."""
    out = {}
    if row.get("images"):
        out["images"] = [load_image(v, data) for v in row["images"]]
    if row.get("audios"):
        out["audio"] = [load_audio(v, processor) for v in row["audios"]]
    return out


def process(processor, texts: list[str], rows_media: list[dict], **kwargs):
    """The processor on a batch: images nested per row, audio flat (each processor's own convention).
    A template that writes the BOS itself gets no second one, as in the processor's own
    apply_chat_template (what inference will feed the model)."""
    bos = processor.tokenizer.bos_token
    if bos and all(text.startswith(bos) for text in texts):
        kwargs["add_special_tokens"] = False
    if any("images" in m for m in rows_media):
        kwargs["images"] = [m.get("images") for m in rows_media]
    if any("audio" in m for m in rows_media):
        kwargs["audio"] = [a for m in rows_media for a in m.get("audio", [])]
        kwargs["sampling_rate"] = processor.feature_extractor.sampling_rate
    return processor(text=texts, **kwargs)


def expanding_tokens(processor) -> set[int]:
    """The ids the processor repeats once per patch or audio frame."""
    tokens = [getattr(processor, name, None) for name in ("image_token", "audio_token")]
    return {processor.tokenizer.convert_tokens_to_ids(t) for t in tokens if t}


class MediaRows(RowKind):
    STATS = ("trained", "n_images", "n_audios")
    KEEP_LENGTH = True  # (packing reads it)

    def columns(self, raw) -> list[str]:
        return list(raw.column_names)

    def read(self, row: dict) -> dict:
        segments = chat_template.segments(row, self.ctx)
        text = "".join(piece for piece, _ in segments)
        expanded = process(self.ctx.processor, [text], [media(row, self.ctx.processor, self.cfg.data)])["input_ids"][0]
        [(_, labels)] = encode(self.ctx.tokenizer, [segments], False, self.cfg.data.train_on_inputs)
        return {**row, "length": len(expanded), "trained": sum(1 for t in labels if t != IGNORE),
                "n_images": len(row.get("images") or []), "n_audios": len(row.get("audios") or [])}

    def prompt(self, text: str) -> tuple[str, bool]:
        return chat_template.prompt(text, self.ctx), False


# Families whose rows pack exactly (a test per family: packed loss equals unpacked loss): each image's
# or clip's features fill its own tokens, in order, and the language model keeps the packed rows apart
# by their position_ids, as for text.
PACKABLE = {"LlavaProcessor", "LlavaNextProcessor", "Idefics3Processor", "Qwen2AudioProcessor"}
# Why the others are not packed. Packing only buys speed: each conversation trains whole instead, so
# what is learned is the same.
NOT_PACKED = {
    "MllamaProcessor": "its images reach the text through a cross-attention mask built per conversation",
    "Qwen2VLProcessor": "its M-RoPE positions are computed over a whole sequence from `image_grid_thw`, so they "
                        "cannot restart for each packed row",
    "Gemma3Processor": "its image tokens attend to each other both ways, through a mask built over the whole "
                       "sequence that packing's block-diagonal mask would replace",
}
NOT_PACKED["Qwen2_5_VLProcessor"] = NOT_PACKED["Qwen3VLProcessor"] = NOT_PACKED["Qwen2VLProcessor"]
NOT_PACKED["Gemma3nProcessor"] = NOT_PACKED["Gemma3Processor"]


def packs(processor) -> bool:
    """Whether `sample_packing` packs this family's rows; if not, the run is told why."""
    name = type(processor).__name__
    if name in PACKABLE:
        return True
    reason = NOT_PACKED.get(name, "axo has not verified that this family's model keeps packed rows apart "
                                  "(packed: " + ", ".join(sorted(PACKABLE)) + ")")
    log.warning("sample_packing: rows are not packed for %s: %s. Each conversation trains whole, padded to the "
                "longest of its micro-batch (the same learning, slower).", name, reason)
    return False


class MediaCollator:
    def __init__(self, processor, ctx: Context, train_on_inputs: bool = False, flatten: bool = False):
        self.processor, self.ctx, self.train_on_inputs = processor, ctx, train_on_inputs
        self.flatten = flatten  # packs for a varlen backend: one sequence per micro-batch (data/collator.py)
        self.expanding = expanding_tokens(processor)

    def __call__(self, items: list[dict]) -> dict[str, torch.Tensor]:
        """A micro-batch of prepared rows (each was read this way once already), or of packs of them."""
        packed = [item["pack"] if "pack" in item else [item] for item in items]
        rows = [row for pack in packed for row in pack]
        segments = [chat_template.segments(row, self.ctx) for row in rows]
        texts = ["".join(text for text, _ in segs) for segs in segments]
        unexpanded = encode(self.processor.tokenizer, segments, False, self.train_on_inputs)
        batch = dict(process(self.processor, texts, [media(row, self.processor, self.ctx.data) for row in rows],
                             padding=True, return_tensors="pt"))
        batch["labels"] = torch.stack([
            self._expand(ids, labels, row_ids) for (ids, labels), row_ids in zip(unexpanded, batch["input_ids"])])
        if "pack" not in items[0]:
            return batch
        return self._joined(batch, [len(rows)] if self.flatten else [len(pack) for pack in packed])

    def _joined(self, batch: dict, sizes: list[int]) -> dict[str, torch.Tensor]:
        """Each pack's rows end to end in one sequence, padded and masked as text packs are (the text
        Collator: position_ids restart at each row, no row learns to predict the next one's start);
        the image and audio tensors stay in row order, which is the order of their tokens."""
        from axo.data.collator import Collator

        mask = batch.pop("attention_mask").bool()
        ids, labels = batch.pop("input_ids"), batch.pop("labels")
        per_token = [k for k, v in batch.items() if isinstance(v, torch.Tensor) and v.shape[:2] == ids.shape]
        if per_token:  # (a PACKABLE family's processor that began returning per-token inputs)
            raise AxoError(f"sample_packing: {type(self.processor).__name__} returns per-token {per_token}, which "
                           "packing does not join. Fix: set `sample_packing: false`.")
        rows = iter([(ids[i][mask[i]], labels[i][mask[i]]) for i in range(len(ids))])
        packs = []
        for n in sizes:
            part = [next(rows) for _ in range(n)]
            packs.append({"input_ids": torch.cat([i for i, _ in part]), "labels": torch.cat([lab for _, lab in part]),
                          "position_ids": torch.cat([torch.arange(len(i)) for i, _ in part])})
        return {**batch, **Collator(self.processor.tokenizer.pad_token_id)(packs)}

    def _expand(self, ids: list[int], labels: list[int], processed: torch.Tensor) -> torch.Tensor:
        """Labels for the processor's ids: they are our ids with each image or audio token repeated for
        its patches or frames (and padding), so walk both; those and padding positions never train."""
        out = torch.full_like(processed, IGNORE)
        j = 0
        for i, token in enumerate(processed.tolist()):
            if j < len(ids) and token == ids[j]:
                out[i] = labels[j] if token not in self.expanding else IGNORE
                j += 1 if token not in self.expanding or self._run_ends(processed, i) else 0
        if j != len(ids):
            raise AxoError("the processor changed the text beyond inserting image or audio tokens, so labels cannot "
                           "be placed. Fix: use the processor's own chat template.")
        return out

    def _run_ends(self, processed: torch.Tensor, i: int) -> bool:
        return i + 1 >= len(processed) or processed[i + 1].item() != processed[i].item()
