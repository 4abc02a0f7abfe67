"""Alpaca: instruction / input / output, with Axolotl's (and Stanford Alpaca's) prompt text."""

REQUIRED = ("instruction", "output")

WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
)


def prompt(instruction: str, input: str | None = None) -> str:
    """The text the model sees before its answer; inference uses the same function."""
    if input:
        return WITH_INPUT.format(instruction=instruction, input=input)
    return NO_INPUT.format(instruction=instruction)


def split(row: dict) -> tuple[str, str]:
    """(prompt, response) of one row."""
    return prompt(row["instruction"], row.get("input")), row["output"]
