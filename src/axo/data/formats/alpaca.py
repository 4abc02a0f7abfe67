"""Alpaca: instruction / input / output, with Axolotl's (and Stanford Alpaca's) prompt text.
A non-empty `system` column replaces the opening sentence.

Axolotl's older instruction types are this format too, spelled `KIND[:STYLE]` (`alpaca:chat`,
`jeopardy`, `oasst:chatml`...), and so are the prompt strategies of its alpaca family
(`alpaca_chat.load_qa`, `alpaca_w_system.load_open_orca`, `context_qa.load_v2`...): the kind says
which columns hold the instruction, input and answer (and a system text, where the rows carry one),
the style how the turns are written, the system text what opens the prompt (Axolotl's prompters.py
AlpacaPrompter and the strategies' prompters, the same text). The names are listed in
config/data.py (ALPACA_KINDS, ALPACA_STYLES, AXOLOTL_PROMPTERS)."""

from string import Formatter

from axo.config.data import alpaca_type
from axo.data.formats.base import Context, RowError, Segment, text_field

ADD_SPECIAL_TOKENS = True
SPLIT_LONG = False

PREAMBLE_INPUT = ("Below is an instruction that describes a task, paired with an input that provides "
                  "further context. Write a response that appropriately completes the request.")
PREAMBLE = "Below is an instruction that describes a task. Write a response that appropriately completes the request."
# system text -> (with an input, without one); "" writes no system turn
SYSTEM_TEXTS = {
    "alpaca": (PREAMBLE_INPUT, PREAMBLE),
    "concise": ("Below is an instruction from a USER that describes a task, paired with an input that provides "
                "further context. The ASSISTANT writes a response that concisely and appropriately completes the "
                "request.\n\n",
                "Below is an instruction from a USER that describes a task. The ASSISTANT writes a response that "
                "appropriately and concisely completes the request.\n\n"),
    "context": ("Use the following contextual information to concisely answer the question.\n",) * 2,
    "none": ("", ""),
}
# style -> (system turn, turn with input, turn without input)
STYLES = {
    "instruct": ("{system}\n\n", "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
                 "### Instruction:\n{instruction}\n\n### Response:\n"),
    "chat": ("SYSTEM: {system}\n", "USER: {instruction}\n{input}\nASSISTANT:", "USER: {instruction}\nASSISTANT:"),
    "chatml": ("<|im_start|>system\n{system}<|im_end|>\n",
               "<|im_start|>user\n{instruction}\n{input}<|im_end|>\n<|im_start|>assistant\n",
               "<|im_start|>user\n{instruction}<|im_end|>\n<|im_start|>assistant\n"),
    "phi": ("<|system|>\n{system}<|end|>\n", "<|user|>\n{instruction}<|end|>{input}<|assistant|>",
            "<|user|>\n{instruction}<|end|>\n<|assistant|>\n"),
    "open_orca": ("### System:\n{system}\n", "### Human:\n{instruction}\n### Additional Context:\n{input}\n"
                  "### Assistant:\n", "### Human:\n{instruction}\n### Assistant:\n"),
    "bare": ("{system}", "{instruction}\n{input}", "{instruction}"),
}
NO_ANSWER = ("The context provided does not contain any information about your inquiry. Therefore, I'm unable to "
             "answer your question based on the given context.")
# kind -> (instruction, input column or None, answer, system column): instruction and answer are written
# from the row's columns; the system column, where given, must be there ("system" is read if present)
KINDS = {
    "alpaca": ("{instruction}", "input", "{output}", None),
    "jeopardy": ("{question}", "category", "what is {answer}", None),
    "oasst": ("{INSTRUCTION}", None, "{RESPONSE}", None),
    "gpteacher": ("{instruction}", "input", "{response}", None),
    "qa": ("{question}", None, "{answer}", None),
    "camel_ai": ("{message_1}", None, "{message_2}", None),
    "with_system": ("{instruction}", "input", "{output}", "system"),
    "open_orca": ("{question}", None, "{response}", "system_prompt"),
    "context": ("{article}\n===\n{question}", None, "{answer}", None),
    "context_404": ("{article}\n===\n{unanswerable_question}", None, NO_ANSWER, None),
    "context_v2": ("Context: {context}\nQuestion: {question}\n", None, "Answer: {answer}", None),
}


def _parts(ctx: Context) -> tuple[tuple, tuple, tuple]:
    kind, style, system = alpaca_type(ctx.ds.type)
    return KINDS[kind], STYLES[style], SYSTEM_TEXTS[system]


def _fields(template: str) -> list[str]:
    return [name for _, name, _, _ in Formatter().parse(template) if name]


def columns(ctx: Context) -> list[str]:
    (instruction, _, answer, system), _, _ = _parts(ctx)
    return _fields(instruction) + _fields(answer) + ([system] if system else [])


def build_prompt(instruction: str, input: str = "", system: str = "", style: tuple = STYLES["instruct"],
                 texts: tuple[str, str] = SYSTEM_TEXTS["alpaca"]) -> str:
    """The prompt before the answer: the system turn (the row's system text, else the prompter's; none
    when both are empty), then the turn with or without the input."""
    system_format, with_input, no_input = style
    text = system or texts[0 if input else 1]
    opening = system_format.format(system=text) if text else ""
    if input:
        return opening + with_input.format(instruction=instruction, input=input)
    return opening + no_input.format(instruction=instruction)


def segments(row: dict, ctx: Context) -> list[Segment]:
    (instruction, input, answer, system), style, texts = _parts(ctx)
    prompt = build_prompt(_write(instruction, row), text_field(row, input, required=False) if input else "",
                          text_field(row, system or "system", required=bool(system)), style, texts)
    return [(prompt, False), (_write(answer, row) + ctx.tokenizer.eos_token, True)]


def _write(template: str, row: dict) -> str:
    try:
        return template.format(**{name: text_field(row, name) for name in _fields(template)})
    except (KeyError, IndexError, ValueError) as err:
        raise RowError(_fields(template)[0], f"cannot be written into {template!r} ({err})", "Fix the row.") from None


def prompt(text: str, ctx: Context) -> str:
    _, style, texts = _parts(ctx)
    return build_prompt(text, style=style, texts=texts)
