"""Preference rows -> TRL's conversational format: {prompt: [messages], chosen: [assistant message],
rejected: [assistant message]} (KTO: {prompt, completion, label}). TRL renders them with the chat
template and tokenizes; the template is the dataset's (chatml.* and llama3.* name theirs)."""

from axo.config.data import DatasetConfig, UserDefinedPreference
from axo.data.formats.base import Context, RowError, text_field
from axo.data.formats import chat_template
from axo.data.formats.chat_template import read_messages
from axo.data.rows import RowKind

# row shape -> (system column, prompt column, chosen column, rejected column)
SIMPLE_SHAPES = {
    "intel": ("system", "question", "chosen", "rejected"),
    "prompt_pairs": ("system", "prompt", "chosen", "rejected"),
    "argilla": ("system", "instruction", "chosen_response", "rejected_response"),
    "ultra": ("system", "prompt", "chosen", "rejected"),  # answers are [user, assistant] message lists
}


def to_trl_row(row: dict, ds: DatasetConfig, ctx: Context) -> dict:
    kind = ds.type_name.split(".")[-1]
    if ds.type_name == "user_defined.default":
        return _user_defined(row, ds.type)
    if ds.type_name == "chat_template.argilla":  # whole conversations: the prompt is what precedes the answer
        chosen, rejected = ds.field_chosen, ds.field_rejected
        messages = _system(row) + [m for m in _as_messages(row, chosen, "assistant")[:-1]]
        if not messages:
            raise RowError(chosen, "must hold the conversation (its prompt, then the answer)", "Fix the row.")
    elif kind in SIMPLE_SHAPES:
        system, prompt, chosen, rejected = SIMPLE_SHAPES[kind]
        messages = _system(row, system) + [{"role": "user", "content": text_field(row, prompt)}]
    else:  # chat_template.default, bradley_terry.chat_template
        messages, _ = read_messages(row, ctx)
        chosen, rejected = ds.field_chosen, ds.field_rejected
    return {"prompt": messages, "chosen": _answer(row, chosen), "rejected": _answer(row, rejected)}


def to_kto_row(row: dict) -> dict:
    """{prompt, completion, label} (+ an optional system column), as message lists."""
    prompt = _as_messages(row, "prompt", "user")
    return {"prompt": _system(row) + prompt if prompt[0].get("role") != "system" else prompt,
            "completion": _as_messages(row, "completion", "assistant"), "label": _label(row)}


def _system(row: dict, column: str = "system") -> list[dict]:
    return [{"role": "system", "content": row[column]}] if row.get(column) else []


def _user_defined(row: dict, f) -> dict:
    """Plain text rows (TRL adds EOS to the answers)."""
    system = text_field(row, f.field_system, required=False)
    return {"prompt": f.prompt_format.format(prompt=text_field(row, f.field_prompt), system=system),
            "chosen": f.chosen_format.format(chosen=text_field(row, f.field_chosen)),
            "rejected": f.rejected_format.format(rejected=text_field(row, f.field_rejected))}


def _answer(row: dict, field: str) -> list[dict]:
    value = row.get(field)
    if isinstance(value, dict):  # a message
        value = value.get("content")
    if isinstance(value, list) and value and isinstance(value[-1], dict):  # a list of messages: the last answers
        value = value[-1].get("content")
    if not isinstance(value, str):
        raise RowError(field, "must be the answer's text (or a message holding it)",
                       f"Point `field_{'chosen' if 'chosen' in field else 'rejected'}` at the right column.")
    return [{"role": "assistant", "content": value}]


def _as_messages(row: dict, field: str, role: str) -> list[dict]:
    value = row.get(field)
    if isinstance(value, list):
        return value
    return [{"role": role, "content": text_field(row, field)}]


def _label(row: dict) -> bool:
    if not isinstance(row.get("label"), bool):
        raise RowError("label", f"must be true (desirable) or false, got {row.get('label')!r}", "Fix the row.")
    return row["label"]


class PairRows(RowKind):
    """Rows of chosen/rejected pairs (DPO, IPO, ORPO, SimPO, reward models) in TRL's format, measured
    as TRL tokenizes them: the prompt, and the prompt followed by each answer."""

    STATS = ("prompt_len", "chosen_len", "rejected_len", "trained")
    ANSWERS = ("chosen", "rejected")

    def columns(self, raw) -> list[str]:
        return ["prompt", *self.ANSWERS] + (["chat_template_kwargs"] if self._template_kwargs else [])

    def read(self, row: dict) -> dict:
        return self.measure(self._with_kwargs(to_trl_row(row, self.ctx.ds, self.ctx)))

    def measure(self, row: dict) -> dict:
        prompt = len(self._tokens(row["prompt"], prompt=True))
        full = {a: len(self._tokens(_join(row["prompt"], row[a], self.ctx.tokenizer.eos_token))) for a in self.ANSWERS}
        answers = {f"{a}_len": full[a] - prompt for a in self.ANSWERS}
        return {**row, "length": max(full.values()), "prompt_len": prompt, **answers, "trained": sum(answers.values())}

    def _tokens(self, value, prompt: bool = False) -> list[int]:
        tokenizer = self.ctx.tokenizer
        if isinstance(value, str):
            return tokenizer(value)["input_ids"]
        return tokenizer.apply_chat_template(value, chat_template=self.ctx.template, add_generation_prompt=prompt,
                                             tokenize=True, return_dict=False, **self._template_kwargs)

    @property
    def _template_kwargs(self) -> dict:
        return self.ctx.data.chat_template_kwargs or {}

    def _with_kwargs(self, row: dict) -> dict:
        """TRL renders each conversational row with the row's own `chat_template_kwargs`."""
        return {**row, "chat_template_kwargs": self._template_kwargs} if self._template_kwargs else row

    def truncate(self, row: dict, limit: int) -> dict | None:
        """TRL cuts the sequences to `max_length` (= sequence_len) from the end, keeping the prompt's
        start; a row whose prompt alone fills it keeps no answer, and TRL drops it."""
        return {**row, "length": limit} if row["prompt_len"] < limit else None

    def prompt(self, text: str) -> tuple[str, bool]:
        fmt = self.ctx.ds.type
        if isinstance(fmt, UserDefinedPreference):
            return fmt.prompt_format.format(prompt=text, system=""), True
        return chat_template.prompt(text, self.ctx), False


class KTORows(PairRows):
    """KTO rows: one answer, labelled desirable or not."""

    STATS = ("prompt_len", "completion_len", "trained")
    ANSWERS = ("completion",)

    def columns(self, raw) -> list[str]:
        return ["prompt", "completion", "label"] + (["chat_template_kwargs"] if self._template_kwargs else [])

    def read(self, row: dict) -> dict:
        return self.measure(self._with_kwargs(to_kto_row(row)))


def _join(prompt, answer, eos: str):
    """The prompt followed by an answer, as TRL joins them (plain text gets EOS)."""
    return prompt + answer + ("" if answer.endswith(eos) else eos) if isinstance(prompt, str) else prompt + answer

