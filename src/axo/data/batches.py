"""What the SFT Trainer gets: the prepared rows (packed where the config says so) and the collator
that batches them; image-text rows are batched by the model's processor."""

from dataclasses import dataclass, field

from axo.config import Config
from axo.data.chat import Processing, context
from axo.data.prepare import Prepared


@dataclass
class TrainerInputs:
    train: object
    eval: object | None
    collator: object
    stats: dict = field(default_factory=dict)  # packing efficiency, for the run summary


def trainer_inputs(cfg: Config, data: Prepared, text: Processing) -> TrainerInputs:
    if text.processor is not None:
        from axo.data.vision import VisionCollator

        ctx = context(cfg, text.chat, "datasets", 0, text.tokenizer, text.processor)
        return TrainerInputs(data.train, data.eval, VisionCollator(text.processor, ctx, cfg.data.train_on_inputs))
    from axo.data.collator import Collator
    from axo.data.packing import trainer_datasets

    from axo.model.preflight import attention_backend, is_varlen

    train, ev, stats = trainer_datasets(cfg, data)
    flatten = is_varlen(attention_backend(cfg.model.attn_implementation))
    pad_to = cfg.data.sequence_len if cfg.data.pad_to_sequence_len and not flatten else None
    return TrainerInputs(train, ev, Collator(text.tokenizer.pad_token_id, pad_to, flatten), stats)
