"""Segments of text -> input_ids and labels, the same way for every format.

The segments of a row are joined and tokenized once, as inference will tokenize them, and a
token is trained when its first non-space character lies in a trained segment (its first character
when it is all spaces). SentencePiece word tokens carry the space before the word (`▁Paris` covers
" Paris"), so when a prompt ends in a space ("A: ", "[/INST] ") the answer's first token starts in
the prompt: by its first character it would never be trained. Tokens the tokenizer adds itself
(BOS) cover no characters and are never trained."""

from bisect import bisect_right

from axo.errors import AxoError

IGNORE = -100


def encode(tokenizer, rows: list[list[tuple[str, bool]]], add_special_tokens: bool,
           train_everything: bool = False) -> list[tuple[list[int], list[int]]]:
    if not getattr(tokenizer, "is_fast", False):
        raise AxoError("axo needs a fast (Rust) tokenizer to place label masks exactly; "
                       "this one is slow. Fix: use a tokenizer with a tokenizer.json.")
    if not rows:
        return []
    texts, spans = [], []
    for segments in rows:
        text, pos, trained = "", 0, []
        for piece, train in segments:
            if train or train_everything:
                trained.append((pos, pos + len(piece)))
            text += piece
            pos += len(piece)
        texts.append(text)
        spans.append(trained)
    batch = tokenizer(texts, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
    out = []
    for text, ids, offsets, trained in zip(texts, batch["input_ids"], batch["offset_mapping"], spans):
        starts = [s for s, _ in trained]
        labels = [tok if end > start and _inside(_anchor(text, start, end), trained, starts) else IGNORE
                  for tok, (start, end) in zip(ids, offsets)]
        out.append((list(ids), labels))
    return out


def _anchor(text: str, start: int, end: int) -> int:
    """The character that decides a token: its first non-space one, else its first."""
    for i in range(start, end):
        if not text[i].isspace():
            return i
    return start


def _inside(char: int, spans: list[tuple[int, int]], starts: list[int]) -> bool:
    i = bisect_right(starts, char) - 1
    return i >= 0 and char < spans[i][1]
