"""What the SFT Trainer gets: the prepared rows (packed where the config says so) and the collator
that batches them; multimodal rows are batched by the model's processor."""

import logging
from dataclasses import dataclass, field

from axo.config import Config
from axo.data.chat import Processing, context
from axo.data.prepare import Prepared

log = logging.getLogger("axo")


@dataclass
class TrainerInputs:
    train: object
    eval: object | None
    collator: object
    stats: dict = field(default_factory=dict)  # packing efficiency, for the run summary
    rows_per_sequence: int = 1  # packs per sequence_len in a micro-batch (packs_per_sequence)


def trainer_inputs(cfg: Config, data: Prepared, text: Processing) -> TrainerInputs:
    from axo.data.packing import trainer_datasets
    from axo.model.preflight import attention_backend, is_varlen

    flatten = is_varlen(attention_backend(cfg.model.attn_implementation))
    if text.processor is not None:
        return _multimodal_inputs(cfg, data, text, flatten)
    from axo.data.collator import Collator

    d = cfg.data
    split = _packs_per_sequence(cfg, data) if not flatten else 1
    train, ev, stats = trainer_datasets(cfg, data, split)
    # pad_to_sequence_len asks for one constant shape: [micro_batch_size x split, pack length]
    pad_to = d.sequence_len // split if d.pad_to_sequence_len and not flatten else None
    return TrainerInputs(train, ev, Collator(text.tokenizer.pad_token_id, pad_to, flatten), stats, split)


def _multimodal_inputs(cfg: Config, data: Prepared, text: Processing, flatten: bool) -> TrainerInputs:
    """Rows batched by the model's processor; packed where the family allows it (data/media.py)."""
    from axo.data.media import MediaCollator, packs
    from axo.data.packing import trainer_datasets

    ctx = context(cfg, text.chat, "datasets", 0, text.tokenizer, text.processor)
    collator = MediaCollator(text.processor, ctx, cfg.data.train_on_inputs, flatten)
    if not (cfg.data.sample_packing and packs(text.processor)):
        return TrainerInputs(data.train, data.eval, collator)
    train, ev, stats = trainer_datasets(cfg, data)
    return TrainerInputs(train, ev, collator, stats)


def _packs_per_sequence(cfg: Config, data: Prepared) -> int:
    """Packs per sequence_len for a backend that attends over whole packs (packing.packs_per_sequence)."""
    d = cfg.data
    if not d.sample_packing or d.pretraining_dataset:
        return 1
    from axo.data.packing import attention_span, packs_per_sequence
    from axo.model.loader import load_config
    from axo.model.preflight import attention_backend

    lengths = list(data.train["length"])
    if data.eval is not None and d.pack_eval:  # eval packs have the same length: its rows must fit too
        lengths += list(data.eval["length"])
    split = packs_per_sequence(lengths, d.sequence_len, attention_span(load_config(cfg)), d.sample_packing_sequentially)
    if split > 1:
        log.info("Packing %d packs of %d tokens per sequence_len: %s attends over whole packs, so for this model "
                 "and these rows shorter ones cost less; micro-batches hold %d x micro_batch_size packs, the "
                 "same tokens per step", split, d.sequence_len // split,
                 attention_backend(cfg.model.attn_implementation), split)
    return split
