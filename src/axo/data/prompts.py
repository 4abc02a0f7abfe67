"""Prompts for GRPO: rows mapped by the user's transform (`type: my_module.transform`, returning
`prompt` and any fields the reward functions read) or by the chat_template prompt mapping (the
conversation up to its last user turn). Other columns travel along to the reward functions.

A prompt row is as long as its prompt plus the completion budget (`trl.max_completion_length`), the
longest sequence GRPO can make of it, so `sequence_len` bounds it like every other row."""

from axo.config import Config
from axo.data.formats.base import Context, RowError
from axo.data.formats import chat_template
from axo.data.formats.chat_template import read_messages
from axo.data.rows import RowKind


class PromptRows(RowKind):
    STATS = ("prompt_len",)
    LENGTH_NOTE = " (a prompt row of online RL is as long as its prompt plus `trl.max_completion_length`)"

    def __init__(self, cfg: Config, ctx: Context):
        from axo.config.user_code import resolve

        self.cfg, self.ctx = cfg, ctx
        self.mapper = resolve(ctx.ds.type) if ctx.ds.is_transform else None
        self.budget = completion_budget(cfg)

    def columns(self, raw) -> list[str]:
        """The raw columns, plus what the transform adds (learned from the first row it reads)."""
        added = ["prompt"]
        if self.mapper is not None and len(raw):
            first = self._map(raw[0])
            added = list(first) if isinstance(first, dict) else added
        return list(dict.fromkeys([*raw.column_names, *added]))

    def read(self, row: dict) -> dict:
        return self.measure(self._map(row))

    def _map(self, row: dict) -> dict:
        if self.mapper is None:
            return {**row, "prompt": chat_prompt(row, self.ctx)}
        try:
            mapped = self.mapper(dict(row))
        except Exception as err:  # the user's code: the row it failed on is what helps
            raise RowError("(transform)", f"{self.ctx.ds.type!r} raised {type(err).__name__}: {err}",
                           "Fix the row or the transform.") from None
        if not isinstance(mapped, dict) or "prompt" not in mapped:
            raise RowError("(transform)", f"{self.ctx.ds.type!r} must return a dict with `prompt`, got "
                           f"{type(mapped).__name__}", "Fix the transform.")
        return {**row, **mapped}

    def measure(self, row: dict) -> dict:
        prompt = row["prompt"]
        text = prompt if isinstance(prompt, str) else chat_template.render(self.ctx, prompt, generation_prompt=True)
        tokens = len(self.ctx.tokenizer(text, add_special_tokens=isinstance(prompt, str))["input_ids"])
        return {**row, "prompt_len": tokens, "length": tokens + self.budget}

    def prompt(self, text: str) -> tuple[str, bool]:
        if self.ctx.template:
            return chat_template.prompt(text, self.ctx), False
        return text, True


def chat_prompt(row: dict, ctx: Context) -> list[dict]:
    """The conversation up to its last user turn: the model writes the answer."""
    messages, _ = read_messages(row, ctx)
    while messages and messages[-1]["role"] == "assistant":
        messages.pop()
    if not messages:
        raise RowError(ctx.ds.field_messages, "holds no prompt once the assistant's answer is removed", "Fix the row.")
    return messages


def completion_budget(cfg: Config) -> int:
    """The most tokens GRPO generates per prompt: `trl.max_completion_length`, else TRL's default."""
    set_ = cfg.rl.trl.max_completion_length if cfg.rl.trl else None
    if set_:
        return set_
    from trl import GRPOConfig

    return GRPOConfig.__dataclass_fields__["max_completion_length"].default
