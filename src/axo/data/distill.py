"""Rows for knowledge distillation (`kd_trainer: true`): SFT rows, plus the teacher's top-k
next-token candidates of every token when the rows carry them (`datasets[].logprobs_field`).

Entry i of the log-probs column is the teacher's distribution over token i given the tokens
before it: vLLM's `prompt_logprobs` layout, with null where there is none (the first token). A
list shorter than the row covers its last tokens (a teacher's log-probs of the answer only). Each
entry is read in any of the spellings teachers write:

    {"1234": -0.1, "99": -2.5}                          vLLM: token id -> logprob (or {"logprob": x})
    [{"token": "token_id:1234", "logprob": -0.1}, ...]   Axolotl's KD plugin (legacy)
    [-0.1, -2.5] with a `target_token_ids` column        Axolotl's KD plugin (v2)

The rows keep `teacher_ids` and `teacher_scores` (k per token; id 0 and -inf where there is
none). A score is the temperature the log-probs were made at times the log-prob renormalized over
the k tokens: the teacher's logits up to a constant, so the trainer reads the distribution at any
temperature T as softmax(scores / T) without preparing the data again."""

import math

from axo.data.formats.base import RowError
from axo.data.rows import TextRows
from axo.errors import AxoError

FIX = ("Give the teacher's log-probs of each token: a list with one entry per token (or per token of its "
       "end), each a {token_id: logprob} map, or set `skip_bad_rows: true`.")


class KDRows(TextRows):
    """SFT rows with the teacher's top-k candidates per token, where the dataset has them."""

    def columns(self, raw) -> list[str]:
        columns = super().columns(raw)
        field = self.ctx.ds.logprobs_field
        if field is None:
            return columns  # the teacher runs alongside (teacher_model)
        if field not in raw.column_names:
            raise AxoError(f"`{self.ctx.key}.logprobs_field`: {self.ctx.ds.path} has no column {field!r} "
                           f"(columns: {raw.column_names}). Fix: name the column with the teacher's log-probs.")
        return columns + ["teacher_ids", "teacher_scores"]

    def encode(self, rows: list[dict]) -> list:
        encoded = super().encode(rows)
        field = self.ctx.ds.logprobs_field
        if field is None:
            return encoded
        out = []
        for raw, item in zip(rows, encoded):
            if not isinstance(item, RowError):
                try:
                    item = self.with_teacher(item, teacher_entries(raw.get(field), raw.get("target_token_ids"),
                                                                   field, len(self.ctx.tokenizer)))
                except RowError as err:
                    item = err
            out.append(item)
        return out

    def with_teacher(self, item: dict, entries: list) -> dict:
        """The row with its teacher columns; `entries` cover its last len(entries) tokens."""
        n = len(item["input_ids"])
        if len(entries) > n:
            raise RowError(self.ctx.ds.logprobs_field, f"has {len(entries)} entries but the row has {n} tokens "
                           "(the teacher read other text, or another tokenizer)", FIX)
        shift = _misalignment([int(t) for t in item["input_ids"]], entries, n - len(entries))
        if shift:
            fix = ("prepend a null entry (the first token has none)" if shift > 0 else "drop the first entry")
            raise RowError(self.ctx.ds.logprobs_field, f"looks shifted by one token: entry i holds the candidates "
                           f"of token i{shift:+d}, but an entry describes the token at its own position (vLLM's "
                           "prompt_logprobs layout)", f"Fix: {fix} in every row; a shifted teacher trains the "
                           "student toward the wrong tokens.")
        k = max((len(e) for e in entries if e), default=1)
        temperature = self.ctx.ds.temperature
        ids, scores = [[0] * k for _ in range(n - len(entries))], [[-math.inf] * k for _ in range(n - len(entries))]
        for entry in entries:
            top = sorted(entry.items(), key=lambda kv: -kv[1])
            norm = _logsumexp([lp for _, lp in top]) if top else 0.0
            ids.append([t for t, _ in top] + [0] * (k - len(top)))
            scores.append([temperature * (lp - norm) for _, lp in top] + [-math.inf] * (k - len(top)))
        return {**item, "teacher_ids": ids, "teacher_scores": scores}

    def truncate(self, item: dict, limit: int) -> dict | None:
        return _cut(super().truncate(item, limit), item, 0, limit)

    def split(self, item: dict, limit: int) -> list[dict] | None:
        chunks = super().split(item, limit)
        if chunks is None or "teacher_ids" not in item:
            return chunks
        return [_cut(chunk, item, i * limit, (i + 1) * limit) for i, chunk in enumerate(chunks)]


def _misalignment(ids: list[int], entries: list[dict], start: int) -> int:
    """+1 or -1 when the entries name the tokens one position later (or earlier) far more often than
    the tokens at their own positions: the list is shifted. 0 otherwise, or with too little to tell
    (a teacher's top k often miss the actual token; vLLM's always include it)."""
    hits, seen = {-1: 0, 0: 0, 1: 0}, 0
    for j, entry in enumerate(entries):
        if entry:
            seen += 1
            for shift in hits:
                hits[shift] += 0 <= start + j + shift < len(ids) and ids[start + j + shift] in entry
    best = max(hits, key=hits.get)
    return best if seen >= 4 and best and hits[best] >= seen / 2 and hits[best] > 2 * hits[0] else 0


def _cut(row: dict | None, item: dict, start: int, stop: int) -> dict | None:
    if row is None or "teacher_ids" not in item:
        return row
    return {**row, "teacher_ids": item["teacher_ids"][start:stop], "teacher_scores": item["teacher_scores"][start:stop]}


def teacher_entries(value, target_ids, field: str, vocab: int) -> list[dict[int, float]]:
    """The column's entries as {token id: logprob}, {} where there is none."""
    if not isinstance(value, list):
        raise RowError(field, f"must be a list with one entry per token, got {type(value).__name__}", FIX)
    if target_ids is not None and (not isinstance(target_ids, list) or len(target_ids) != len(value)):
        raise RowError("target_token_ids", f"must be a list as long as {field!r} ({len(value)})", FIX)
    out = []
    for i, entry in enumerate(value):
        try:
            parsed = _entry(entry, target_ids[i] if target_ids is not None else None)
        except (TypeError, ValueError, KeyError, AttributeError, IndexError):
            raise RowError(field, f"entry {i} is not a token's log-probs: {str(entry)[:80]}", FIX) from None
        if any(not 0 <= t < vocab for t in parsed):
            raise RowError(field, f"entry {i} names a token id outside the vocabulary (size {vocab})", FIX)
        out.append(parsed)
    return out


def _entry(entry, ids) -> dict[int, float]:
    if entry is None or entry == []:
        return {}
    if isinstance(entry, dict):  # vLLM: {token_id: logprob | {"logprob": ...}}
        return {int(t): float(v["logprob"] if isinstance(v, dict) else v) for t, v in entry.items()
                if _finite(v["logprob"] if isinstance(v, dict) else v)}
    if ids is not None:  # Axolotl v2: logprobs here, token ids in target_token_ids
        return {int(t): float(lp) for t, lp in zip(ids, entry, strict=True) if _finite(lp)}
    return {int(str(e["token"]).rsplit(":", 1)[-1]): float(e["logprob"]) for e in entry if _finite(e["logprob"])}


def _finite(value) -> bool:
    return value is not None and math.isfinite(float(value))


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))
