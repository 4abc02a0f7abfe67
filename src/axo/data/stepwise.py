"""stepwise_supervised rows for process reward models: {prompt, completions: [step, ...],
labels: [bool, ...]}. The text is the prompt, then each step followed by `step_separator`; the
last token of each separator carries its step's label (1 good, 0 bad), every other token -100."""

from axo.config.data import DatasetConfig
from axo.data.formats.base import RowError, text_field
from axo.data.rows import TokenRows
from axo.data.tokenize import IGNORE


def tokenize_steps(row: dict, ds: DatasetConfig, tokenizer) -> tuple[list[int], list[int]]:
    steps, labels = row.get("completions"), row.get("labels")
    if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
        raise RowError("completions", "must be a non-empty list of step texts", "Fix the row.")
    if not isinstance(labels, list) or len(labels) != len(steps) or not all(isinstance(x, bool) for x in labels):
        raise RowError("labels", f"must be {len(steps)} true/false values, one per step", "Fix the row.")
    ids = tokenizer(text_field(row, "prompt") + ds.step_separator, add_special_tokens=True)["input_ids"]
    out = [IGNORE] * len(ids)
    separator = tokenizer(ds.step_separator, add_special_tokens=False)["input_ids"]
    for i, (step, good) in enumerate(zip(steps, labels)):
        step_ids = tokenizer(step, add_special_tokens=False)["input_ids"] + separator
        scored = not ds.train_on_last_step_only or i == len(steps) - 1
        ids += step_ids
        out += [IGNORE] * (len(step_ids) - 1) + [int(good) if scored else IGNORE]
    return ids, out


class StepRows(TokenRows):
    """Token rows whose labels are step scores; `trained` counts the scored steps."""

    def read(self, row: dict) -> dict:
        return self.row(*tokenize_steps(row, self.ctx.ds, self.ctx.tokenizer))

    def prompt(self, text: str) -> tuple[str, bool]:
        return text, True
