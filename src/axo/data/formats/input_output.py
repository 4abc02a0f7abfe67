"""input_output: `segments: [{text, label}]` joined with no template; exactly the `label: true`
segments are trained. Nothing is added but the tokenizer's BOS: write EOS into your text."""

from axo.data.formats.base import Context, RowError, Segment

ADD_SPECIAL_TOKENS = True
SPLIT_LONG = False
FIX = "Each segment needs `text` (string) and `label` (true/false)."


def columns(ctx: Context) -> list[str]:
    return ["segments"]


def segments(row: dict, ctx: Context) -> list[Segment]:
    parts = row.get("segments")
    if not isinstance(parts, list) or not parts:
        raise RowError("segments", "must be a non-empty list", FIX)
    out = []
    for i, part in enumerate(parts):
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            raise RowError(f"segments[{i}].text", "must be text", FIX)
        if not isinstance(part.get("label"), bool):
            raise RowError(f"segments[{i}].label", f"must be true or false, got {part.get('label')!r}", FIX)
        out.append((part["text"], part["label"]))
    return out


def prompt(text: str, ctx: Context) -> str:
    return text
