"""Alpaca: instruction / input / output, with Axolotl's (and Stanford Alpaca's) prompt text.
A non-empty `system` column replaces the opening sentence.

Axolotl's older instruction types are this format too, spelled `KIND[:STYLE]` (`alpaca:chat`,
`jeopardy`, `oasst:chatml`...): the kind says which columns hold the instruction, input and answer,
the style how the prompt is written (Axolotl's prompters.py AlpacaPrompter, the same text). The
names are listed in config/data.py (ALPACA_KINDS, ALPACA_STYLES)."""

from axo.config.data import alpaca_type
from axo.data.formats.base import Context, Segment, text_field

ADD_SPECIAL_TOKENS = True
SPLIT_LONG = False

PREAMBLE_INPUT = ("Below is an instruction that describes a task, paired with an input that provides "
                  "further context. Write a response that appropriately completes the request.")
PREAMBLE = "Below is an instruction that describes a task. Write a response that appropriately completes the request."
# style -> (system text, turn with input, turn without input)
STYLES = {
    "instruct": ("{system}\n\n", "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
                 "### Instruction:\n{instruction}\n\n### Response:\n"),
    "chat": ("SYSTEM: {system}\n", "USER: {instruction}\n{input}\nASSISTANT:", "USER: {instruction}\nASSISTANT:"),
    "chatml": ("<|im_start|>system\n{system}<|im_end|>\n",
               "<|im_start|>user\n{instruction}\n{input}<|im_end|>\n<|im_start|>assistant\n",
               "<|im_start|>user\n{instruction}<|im_end|>\n<|im_start|>assistant\n"),
    "phi": ("<|system|>\n{system}<|end|>\n", "<|user|>\n{instruction}<|end|>{input}<|assistant|>",
            "<|user|>\n{instruction}<|end|>\n<|assistant|>\n"),
}
# kind -> (instruction column, input column or None, answer column, text put before the answer)
KINDS = {
    "alpaca": ("instruction", "input", "output", ""),
    "jeopardy": ("question", "category", "answer", "what is "),
    "oasst": ("INSTRUCTION", None, "RESPONSE", ""),
    "gpteacher": ("instruction", "input", "response", ""),
}


def _kind_style(ctx: Context) -> tuple[tuple, tuple]:
    kind, style = alpaca_type(ctx.ds.type)
    return KINDS[kind], STYLES[style]


def columns(ctx: Context) -> list[str]:
    (instruction, _, output, _), _ = _kind_style(ctx)
    return [instruction, output]


def build_prompt(instruction: str, input: str = "", system: str = "", style: tuple = STYLES["instruct"]) -> str:
    system_format, with_input, no_input = style
    if input:
        return system_format.format(system=system or PREAMBLE_INPUT) + with_input.format(instruction=instruction,
                                                                                          input=input)
    return system_format.format(system=system or PREAMBLE) + no_input.format(instruction=instruction)


def segments(row: dict, ctx: Context) -> list[Segment]:
    (instruction, input, output, prefix), style = _kind_style(ctx)
    prompt = build_prompt(text_field(row, instruction), text_field(row, input, required=False) if input else "",
                          text_field(row, "system", required=False), style)
    return [(prompt, False), (prefix + text_field(row, output) + ctx.tokenizer.eos_token, True)]


def prompt(text: str, ctx: Context) -> str:
    return build_prompt(text, style=_kind_style(ctx)[1])
