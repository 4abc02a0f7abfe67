"""`axo check-serving`: does the exported GGUF, run by llama.cpp, compute what the trained model does
in transformers? On held-out rows as training rendered them: the same token ids for the same text,
the same chat template and stop tokens in the file, last-position logits within a tolerance for the
file's type (f32 tight; quantized files are judged by how often the top token agrees), and greedy
generations that stop at the same place. A mismatch is an error naming what differs."""

import logging
from dataclasses import dataclass, field
from pathlib import Path

from axo.config import Config
from axo.errors import AxoError

log = logging.getLogger("axo")

# Per file type: the largest last-position logit difference allowed, and the least share of positions
# (f32 and f16: every position; quantized types: the answer positions, where serving generates; at the
# prompt's positions the model predicts the user's text, and near ties there are common: SmolLM2-135M
# in q8_0 agreed at 97.7% of all 741 positions and at every answer position, with 8/8 greedy answers
# identical)
# whose top token must agree. Generations must match where the file is f32 or f16.
TOLERANCE = {"f32": (1e-4, 1.0), "f16": (5e-2, 0.99), "bf16": (2e-1, 0.98), "q8_0": (None, 0.99),
             "q6_k": (None, 0.97), "q5_k_m": (None, 0.95), "q4_k_m": (None, 0.9), "q4_0": (None, 0.9)}
EXACT_GENERATION = ("f32", "f16")
# llama.cpp's CPU backend computes GELU through an fp16 lookup table, so a GELU model (Gemma) served from
# an f32 file is off by about 5e-4 of its largest logit (Gemma 3 270M: 1.6e-2 of 31) where SiLU ones
# agree to 1e-5: for those, the f32 limit is this share of the largest logit instead.
GELU_F32_SHARE = 1e-3
RENDERED = {"identical": "identical", "differs": "DIFFERS", "none": "(no chat template)",
            "unknown": "(a template its built-in engine does not know: llama-server --jinja runs it)"}
PROBE = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What colour is the sky?"},
         {"role": "assistant", "content": "Blue."}, {"role": "user", "content": "And grass?"}]


@dataclass
class Report:
    gguf: str
    file_type: str
    rows: int = 0
    split: str = "held-out"  # or "training", where the config has no eval rows
    positions: int = 0
    ids_match: bool = True
    template_match: bool = True
    # how llama.cpp's own template engine (llama-cli, llama-server without --jinja) renders a conversation
    # next to transformers (a RENDERED key)
    rendered: str = "none"
    stops_match: bool = True
    max_logit_diff: float = 0.0
    top1_agreement: float = 1.0  # at every position
    answer_positions: int = 0
    answer_top1_agreement: float = 1.0  # at the positions that predict an answer token
    generations_match: int = 0
    generations: int = 0
    stopped: int = 0  # llama.cpp's generations that ended on a stop token
    problems: list[str] = field(default_factory=list)
    gelu: bool = False  # the model's activation is a GELU (see GELU_F32_SHARE)
    logit_scale: float = 0.0  # the largest |logit| at the positions compared

    @property
    def gelu_f32(self) -> bool:
        return self.gelu and self.file_type == "f32"

    @property
    def limits(self) -> tuple[float | None, float]:
        limit, agree = TOLERANCE[self.file_type]
        if self.gelu_f32:  # (and a near tie can swap the top token: 1 of 148 did)
            limit, agree = max(limit, GELU_F32_SHARE * self.logit_scale), min(agree, 0.99)
        return limit, agree

    def table(self) -> str:
        limit, agree = self.limits
        why = " for a GELU model: llama.cpp's GELU reads an fp16 table" if self.gelu_f32 else ""
        lines = [f"serving check of {self.gguf} ({self.file_type}) on {self.rows} {self.split} rows, "
                 f"{self.positions} positions",
                 f"  token ids for the same text   {'identical' if self.ids_match else 'DIFFER'}",
                 f"  chat template in the file     {'identical' if self.template_match else 'DIFFERS'}",
                 f"  chat prompt llama.cpp renders {RENDERED[self.rendered]}",
                 f"  stop tokens in the file       {'identical' if self.stops_match else 'DIFFER'}",
                 f"  last-position logits          max |diff| {self.max_logit_diff:.2e}"
                 + (f" (allowed {limit:.0e}{why})" if limit else ""),
                 f"  top-1 token agreement         {self.top1_agreement:.1%} of all positions, "
                 f"{self.answer_top1_agreement:.1%} of {self.answer_positions} answer positions (at least {agree:.0%}"
                 f"{' of all' if self.file_type in EXACT_GENERATION else ' of answers'})",
                 f"  greedy generations            {self.generations_match}/{self.generations} identical, "
                 f"{self.stopped} ended on a stop token"]
        return "\n".join(lines + [f"  PROBLEM: {p}" for p in self.problems])


def check_serving(cfg: Config, gguf: str | Path | None = None, checkpoint: str | None = None, rows: int = 8,
                  new_tokens: int = 24) -> Report:
    import numpy as np
    import torch

    from axo.data.chat import load_processing
    from axo.export.llama_child import LlamaChild
    from axo.infer.generate import stop_ids
    from axo.model.loader import load_for_inference

    path = Path(gguf) if gguf else _newest(cfg)
    file_type = path.stem.rsplit("-", 1)[-1]
    if file_type not in TOLERANCE:
        raise AxoError(f"{path.name}: cannot tell its type from the name (model-<type>.gguf, as `axo export` "
                       "writes). Fix: rename it, e.g. model-q8_0.gguf.")
    model, tokenizer, _ = load_for_inference(cfg, checkpoint, quantize=False)
    model.float()
    text = load_processing(cfg, tokenizer)
    stops = stop_ids(tokenizer, text.chat.stop_tokens)  # as `axo inference` stops
    sequences, split = held_out(cfg, text, rows)
    activation = getattr(model.config, "hidden_activation", None) or getattr(model.config, "hidden_act", "")
    report = Report(str(path), file_type, rows=len(sequences), split=split, gelu="gelu" in str(activation))
    # the attention cache in f32 too, so an f32 file is judged on its own
    with LlamaChild(path, file_type, n_ctx=max(len(s) for s, _ in sequences) + new_tokens + 8, logits_all=True,
                    seed=0, f32_cache=file_type == "f32") as llama:
        _metadata(report, llama, tokenizer, stops)
        agree, answer_agree, diffs = [], [], []
        for ids, prompt_len in sequences:
            text = tokenizer.decode(ids)
            if llama.call("tokenize", text, False, True) != tokenizer(text, add_special_tokens=False)["input_ids"]:
                report.ids_match = False
            top, last = llama.call("logits", ids)
            with torch.no_grad():
                ours = model(torch.tensor([ids])).logits[0].double().numpy()
            same_top = list(np.asarray(top) == ours.argmax(-1))
            agree += same_top
            answer_agree += same_top[prompt_len - 1:-1]  # position i predicts token i + 1
            diffs.append(float(np.abs(last - ours[-1]).max()))
            report.logit_scale = max(report.logit_scale, float(np.abs(ours[-1]).max()))
            same, stopped = _greedy(llama, model, ids[:prompt_len], stops, new_tokens)
            report.generations, report.generations_match = report.generations + 1, report.generations_match + same
            report.stopped += stopped
    report.positions, report.max_logit_diff = len(agree), max(diffs)
    report.top1_agreement = float(np.mean(agree))
    report.answer_positions = len(answer_agree)
    report.answer_top1_agreement = float(np.mean(answer_agree)) if answer_agree else 1.0
    _judge(report)
    return report


def held_out(cfg: Config, text, n: int) -> tuple[list[tuple[list[int], int]], str]:
    """Up to n eval rows (else training rows) as training tokenized them, as (ids, prompt length), and
    which split they are (`text`: the run's Processing)."""
    from axo.data.prepare import prepare
    from axo.data.tokenize import IGNORE

    data = prepare(cfg, text.tokenizer, text.chat)
    held = data.eval is not None and len(data.eval) > 0
    split = data.eval if held else data.train
    out = []
    for row in split.select(range(min(n, len(split)))):
        labels = row["labels"]
        first = next((i for i, t in enumerate(labels) if t != IGNORE), len(labels))
        out.append((list(row["input_ids"]), max(first, 1)))
    return out, "held-out" if held else "training"


def _metadata(report: Report, llama, tokenizer, stops: list[int]) -> None:
    meta = llama.call("metadata", stops)
    report.template_match = (meta["template"] or None) == (tokenizer.chat_template or None)
    if meta["template"]:
        report.rendered = _rendered_by_llama_cpp(llama, meta["template"], tokenizer)
    report.stops_match = set(meta["eog"]) == set(stops) and meta["eos"] == tokenizer.eos_token_id


def _rendered_by_llama_cpp(llama, template: str, tokenizer) -> str:
    """Whether llama.cpp's built-in engine renders the probe conversation (or, for templates without a
    system turn, its last three turns) as transformers does (a RENDERED key)."""
    from axo.export.gguf import without_bos

    for messages in (PROBE, PROBE[1:]):
        try:
            ours = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception:  # the template refuses a system turn
            continue
        theirs = llama.call("render", template, messages)
        if theirs is None:
            return "unknown"
        return "identical" if theirs == without_bos(tokenizer, ours) else "differs"
    return "unknown"


def _greedy(llama, model, prompt: list[int], stops: list[int], new_tokens: int) -> tuple[bool, bool]:
    """Both generate greedily from the prompt: (the same tokens, stopping together; llama.cpp's ended
    on a stop token)."""
    import torch

    with torch.no_grad():
        ours = model.generate(torch.tensor([prompt]), max_new_tokens=new_tokens, do_sample=False,
                              eos_token_id=stops, pad_token_id=stops[0])[0, len(prompt):].tolist()
    theirs = llama.call("greedy", prompt, stops, new_tokens)
    return ours == theirs, bool(theirs) and theirs[-1] in stops


def _judge(report: Report) -> None:
    limit, agree = report.limits
    if not report.ids_match:
        report.problems.append("llama.cpp tokenizes the same text into other token ids")
    if not report.template_match:
        report.problems.append("the chat template in the GGUF is not the trained model's")
    if report.rendered == "differs":
        report.problems.append("llama.cpp's built-in template engine renders a conversation differently from the "
                               "trained template (serve with llama-server --jinja)")
    if not report.stops_match:
        report.problems.append("the GGUF's end-of-generation tokens are not the trained model's stop tokens")
    if limit is not None and report.max_logit_diff > limit:
        report.problems.append(f"last-position logits differ by {report.max_logit_diff:.2e}, more than {limit:.0e}")
    exact = report.file_type in EXACT_GENERATION
    measured = report.top1_agreement if exact else report.answer_top1_agreement
    if measured < agree:
        report.problems.append(f"the top token agrees at {measured:.1%} of {'all' if exact else 'answer'} positions, "
                               f"under {agree:.0%}")
    if report.file_type in EXACT_GENERATION and report.generations_match < report.generations:
        report.problems.append(f"{report.generations - report.generations_match} of {report.generations} greedy "
                               "generations differ")


def _newest(cfg: Config) -> Path:
    files = sorted((Path(cfg.train.output_dir) / "gguf").glob("*.gguf"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise AxoError(f"no GGUF in {cfg.train.output_dir}/gguf. Fix: `axo export CONFIG --format gguf` first, "
                       "or pass --gguf.")
    return files[-1]
