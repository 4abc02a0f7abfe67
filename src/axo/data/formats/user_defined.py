"""`type:` as a mapping: an alpaca-like prompt with the user's field names and prompt text."""

from axo.data.formats.base import Context, Segment, text_field

ADD_SPECIAL_TOKENS = True
SPLIT_LONG = False


def columns(ctx: Context) -> list[str]:
    f = ctx.ds.type
    return [f.field_instruction, f.field_output]


def build_prompt(ctx: Context, instruction: str, input: str = "", system: str = "") -> str:
    f = ctx.ds.type
    system = system or f.system_prompt
    head = f.system_format.format(system=system) if system else ""
    body = f.format if input else f.no_input_format
    return head + body.format(instruction=instruction, input=input)


def segments(row: dict, ctx: Context) -> list[Segment]:
    f = ctx.ds.type
    system = text_field(row, f.field_system, required=False) if f.field_system else ""
    prompt = build_prompt(ctx, text_field(row, f.field_instruction),
                          text_field(row, f.field_input, required=False), system)
    return [(prompt, False), (text_field(row, f.field_output) + ctx.tokenizer.eos_token, True)]


def prompt(text: str, ctx: Context) -> str:
    return build_prompt(ctx, text)
