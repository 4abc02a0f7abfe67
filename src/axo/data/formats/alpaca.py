"""Alpaca: instruction / input / output, with Axolotl's (and Stanford Alpaca's) prompt text.
A non-empty `system` column replaces the opening sentence."""

from axo.data.formats.base import Context, Segment, text_field

ADD_SPECIAL_TOKENS = True
SPLIT_LONG = False

PREAMBLE_INPUT = ("Below is an instruction that describes a task, paired with an input that provides "
                  "further context. Write a response that appropriately completes the request.")
PREAMBLE = "Below is an instruction that describes a task. Write a response that appropriately completes the request."
WITH_INPUT = "{system}\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
NO_INPUT = "{system}\n\n### Instruction:\n{instruction}\n\n### Response:\n"


def columns(ctx: Context) -> list[str]:
    return ["instruction", "output"]


def build_prompt(instruction: str, input: str = "", system: str = "") -> str:
    if input:
        return WITH_INPUT.format(system=system or PREAMBLE_INPUT, instruction=instruction, input=input)
    return NO_INPUT.format(system=system or PREAMBLE, instruction=instruction)


def segments(row: dict, ctx: Context) -> list[Segment]:
    prompt = build_prompt(text_field(row, "instruction"), text_field(row, "input", required=False),
                          text_field(row, "system", required=False))
    return [(prompt, False), (text_field(row, "output") + ctx.tokenizer.eos_token, True)]


def prompt(text: str, ctx: Context) -> str:
    return build_prompt(text)
