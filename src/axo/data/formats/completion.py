"""Completion: raw text, all of it trained, followed by EOS. Texts longer than sequence_len are
cut into consecutive chunks rather than thrown away."""

from axo.data.formats.base import Context, Segment, text_field

ADD_SPECIAL_TOKENS = True
SPLIT_LONG = True


def columns(ctx: Context) -> list[str]:
    return [ctx.ds.field or "text"]


def segments(row: dict, ctx: Context) -> list[Segment]:
    return [(text_field(row, ctx.ds.field or "text") + ctx.tokenizer.eos_token, True)]


def prompt(text: str, ctx: Context) -> str:
    return text
