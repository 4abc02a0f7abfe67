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
            rows = [{key: [v for row in rows for v in row[key]] for key in rows[0]}]
        width = max(max(len(r["input_ids"]) for r in rows), self.pad_to or 0)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["input_ids"])
            input_ids[i, :n] = torch.as_tensor(row["input_ids"])
            labels[i, :n] = torch.as_tensor(row["labels"])
        batch = {"input_ids": input_ids, "labels": labels, **_teacher(rows, width)}
        if "position_ids" not in rows[0]:
            lengths = torch.tensor([len(r["input_ids"]) for r in rows])
            return {**batch, "attention_mask": (torch.arange(width)[None, :] < lengths[:, None]).long()}
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row["position_ids"])
            positions[i, :n] = torch.as_tensor(row["position_ids"])
            positions[i, n:] = torch.arange(width - n)  # padding forms a row of its own
        labels[positions == 0] = IGNORE
        return {**batch, "position_ids": positions}


def _teacher(rows: list[dict], width: int) -> dict[str, torch.Tensor]:
    """KD rows: the teacher's top-k candidates per token, [rows, width, k], padded with score -inf."""
    if "teacher_ids" not in rows[0]:
        return {}
    k = max(len(entry) for row in rows for entry in row["teacher_ids"])
    ids = torch.zeros((len(rows), width, k), dtype=torch.long)
    scores = torch.full((len(rows), width, k), float("-inf"))
    for i, row in enumerate(rows):  # the rows of a pack may differ in k: every entry padded to the batch's
        n = len(row["teacher_ids"])
        ids[i, :n] = torch.as_tensor([entry + [0] * (k - len(entry)) for entry in row["teacher_ids"]])
        scores[i, :n] = torch.as_tensor([entry + [float("-inf")] * (k - len(entry)) for entry in row["teacher_scores"]],
                                        dtype=torch.float)
    return {"teacher_ids": ids, "teacher_scores": scores}


class OnPolicyCollator(Collator):
    """SFT rows for GKD (TRL's GKDTrainer): the batch, plus each row's prompt (its tokens before the
    first trained one) padded on the left, from which the student samples its own answers."""

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        batch = super().__call__(rows)
        prompts = [row["input_ids"][:next((i for i, t in enumerate(row["labels"]) if t != IGNORE), 0)]
                   for row in rows]
        width = max(1, max(len(p) for p in prompts))
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, prompt in enumerate(prompts):
            if prompt:
                ids[i, width - len(prompt):] = torch.as_tensor(prompt)
                mask[i, width - len(prompt):] = 1
        return {**batch, "prompts": ids, "prompt_attention_mask": mask}
