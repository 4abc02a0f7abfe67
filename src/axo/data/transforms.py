"""Row transforms that Axolotl ships as dataset types (`type: ebft_opencode.transform`...), for
configs that name them: each maps one raw row to the `prompt` and `ground_truth` that `rl: ebft`
reads. config/user_code.py resolves the names."""

import re

THINKING = re.compile(r"<think>.*?</think>\s*", flags=re.DOTALL)


def ebft_opencode(row: dict) -> dict:
    """nvidia/OpenCodeInstruct: the `input` question as the user's turn, the `output` code as the
    reference answer."""
    return {"prompt": [{"role": "user", "content": row["input"]}], "ground_truth": row["output"]}


def ebft_reasoning(row: dict) -> dict:
    """OpenAI-style `messages` (or `conversations`): everything before the last assistant turn is the
    prompt, that turn (its <think> trace included) the reference answer."""
    messages = row.get("messages") or row.get("conversations") or []
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
    if last is None:
        return {"prompt": messages[:-1], "ground_truth": ""}
    return {"prompt": list(messages[:last]), "ground_truth": messages[last]["content"]}


def ebft_reasoning_answer_only(row: dict) -> dict:
    """As ebft_reasoning, with <think>...</think> removed from the reference: only the final answer
    is matched."""
    mapped = ebft_reasoning(row)
    return {**mapped, "ground_truth": THINKING.sub("", mapped["ground_truth"]).strip()}
