"""Reward function and prompt transform for examples/grpo.yml (imported by dotted path: a module next
to the config imports like an installed one)."""


def exact(completions, answer, **kwargs):
    """1.0 when the completion is exactly the expected answer."""
    return [1.0 if c.split("</s>")[0].strip() == a else 0.0 for c, a in zip(completions, answer)]


def to_prompt(row):
    """The prompt as examples/tiny.yml trained the model on it: the instruction and a line break."""
    return {"prompt": row["instruction"] + "\n", "answer": row["output"]}
