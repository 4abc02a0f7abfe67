"""Batches for the Trainer, padded on the right.

Plain rows get an attention_mask. Packs (rows with position_ids) get none: transformers derives
the block-diagonal mask from position_ids, and an attention_mask would switch that off. In a
pack, the label at each row's first position is masked, so the last token of one row is never
trained to predict the first token of the next: exactly what training the rows one by one does.
Labels are padded with -100 by position, never by token id, so a pad token that equals EOS
cannot mask a trained EOS.

For varlen attention (flash-attention, hub kernels) the packs of a micro-batch are flattened into
one row with no padding: transformers finds row boundaries from position_ids only when the batch
has one row, and would otherwise let the rows of a pack attend to each other.
"""

import torch

from axo.data.tokenize import IGNORE


class Collator:
    def __init__(self, pad_token_id: int, pad_to: int | None = None, flatten: bool = False):
        self.pad_token_id = pad_token_id
        self.pad_to = pad_to  # pad_to_sequence_len: one shape for every batch
        self.flatten = flatten  # packs of a varlen backend: one row per micro-batch

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        if self.flatten and "position_ids" in rows[0]:
            rows = [{key: [v for row in rows for v in row[key]] for key in ("input_ids", "labels", "position_ids")}]
        width = max(max(len(r["input_ids"]) for r in rows), self.pad_to or 0)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            input_ids[i, :n] = torch.as_tensor(row["input_ids"])
            labels[i, :n] = torch.as_tensor(row["labels"])
        if "position_ids" not in rows[0]:
            lengths = torch.tensor([len(r["input_ids"]) for r in rows])
            attention_mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
            return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["position_ids"])
            positions[i, :n] = torch.as_tensor(row["position_ids"])
            positions[i, n:] = torch.arange(width - n)  # padding forms a row of its own
        labels[positions == 0] = IGNORE
        return {"input_ids": input_ids, "labels": labels, "position_ids": positions}
