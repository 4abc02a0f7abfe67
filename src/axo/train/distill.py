"""Knowledge distillation (`kd_trainer: true`): SFT whose loss pulls the student's next-token
distribution toward a teacher's, on the tokens SFT would train.

The teacher is either top-k candidates stored in the rows (data/distill.py: offline) or a model run
alongside on the same batch (`teacher_model`: online, its top `kd_online_topk` tokens or its whole
vocabulary). Per trained token the loss compares the two distributions over the teacher's
candidates at temperature T (`kd_temperature`):

    kd_beta 0: KL(teacher || student)      (forward, the default)
    kd_beta 1: KL(student || teacher)      (reverse)
    between:   beta KL(teacher || M) + (1 - beta) KL(student || M),  M = beta teacher + (1 - beta) student

which are TRL's GKD divergences (`GKDTrainer.generalized_jsd_loss`) restricted to the candidates; with
the whole vocabulary they are equal (tests/unit/test_distill_loss.py). The divergence is scaled by T^2, so
its gradients keep their size as T changes (Hinton et al. 2015), and mixed with cross-entropy on the
row's own tokens:

    loss = (kd_alpha * T^2 * sum of divergences + kd_ce_alpha * sum of cross-entropies) / trained tokens

The trained tokens are counted over the whole step (gradient accumulation and every process), as
transformers counts them for SFT, so the loss does not depend on how a step is split."""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import Trainer

from axo.config import Config
from axo.data.tokenize import IGNORE


def divergence(student_logits: torch.Tensor, teacher_ids: torch.Tensor, teacher_logprobs: torch.Tensor,
               temperature: float = 1.0, beta: float = 0.0, normalize_topk: bool = False) -> torch.Tensor:
    """Per position, the divergence between teacher and student over the teacher's candidates.
    student_logits [N, V]; teacher_ids and teacher_logprobs [N, k], logprob -inf where a position has
    fewer candidates; every position has at least one."""
    valid = torch.isfinite(teacher_logprobs)
    student = F.log_softmax(student_logits.float() / temperature, dim=-1).gather(-1, teacher_ids)
    # exp(-1e4) is 0 in float32: missing candidates weigh nothing, and no inf - inf reaches a gradient
    student = student.masked_fill(~valid, -1e4)
    teacher = teacher_logprobs.float().masked_fill(~valid, -1e4)
    if normalize_topk:
        student = student - torch.logsumexp(student, dim=-1, keepdim=True)
    if beta == 0:
        per_candidate = teacher.exp() * (teacher - student)
    elif beta == 1:
        per_candidate = student.exp() * (student - teacher)
    else:
        mixture = torch.logsumexp(torch.stack([student + math.log1p(-beta), teacher + math.log(beta)]), dim=0)
        per_candidate = beta * teacher.exp() * (teacher - mixture) + (1 - beta) * student.exp() * (student - mixture)
    return torch.where(valid, per_candidate, 0.0).sum(-1)


@dataclass(frozen=True)
class Distillation:
    """The KD keys, with Axolotl's defaults, and the teacher model when it runs alongside."""

    alpha: float = 1.0
    ce_alpha: float = 0.0
    temperature: float = 1.0
    beta: float = 0.0
    normalize_topk: bool = False
    online_topk: int | None = None
    temperature_min: float | None = None
    teacher: object = None

    @classmethod
    def of(cls, cfg: Config, teacher=None) -> "Distillation":
        r = cfg.rl
        return cls(_or(r.kd_alpha, 1.0), _or(r.kd_ce_alpha, 0.0), _or(r.kd_temperature, 1.0), _or(r.kd_beta, 0.0),
                   bool(r.kd_normalize_topk), r.kd_online_topk, r.kd_temperature_min, teacher)

    def teacher_temperature(self, progress: float) -> float:
        """The online teacher's temperature, `progress` (0..1) into training: a cosine from
        kd_temperature down to kd_temperature_min when set (Axolotl's schedule)."""
        if self.temperature_min is None:
            return self.temperature
        return self.temperature_min + (self.temperature - self.temperature_min) * 0.5 * (1 + math.cos(math.pi * progress))


def _or(value, default):
    return default if value is None else value


class KDTrainer(Trainer):
    """The transformers Trainer with the distillation loss; everything else is SFT's."""

    def __init__(self, *args, distillation: Distillation, **kwargs):
        super().__init__(*args, **kwargs)
        self.distillation = distillation
        if distillation.teacher is not None:
            distillation.teacher.to(self.args.device)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        d = self.distillation
        inputs = dict(inputs)
        labels = inputs.pop("labels")
        stored = inputs.pop("teacher_ids", None), inputs.pop("teacher_scores", None)
        outputs = model(**inputs)
        target = labels[:, 1:]
        trained = target != IGNORE  # logits at position p predict token p + 1
        student = outputs.logits[:, :-1][trained]
        if d.teacher is not None:
            ids, logprobs = self._teacher_candidates(inputs, trained, student.shape[-1])
            kd_student = student
        else:  # entry p of the rows describes token p
            ids, scores = stored[0][:, 1:][trained], stored[1][:, 1:][trained]
            has = torch.isfinite(scores).any(-1)  # a token the rows give no candidates for: cross-entropy only
            ids, logprobs, kd_student = ids[has], F.log_softmax(scores[has] / d.temperature, -1), student[has]
        total = d.alpha * d.temperature ** 2 * divergence(kd_student, ids, logprobs, d.temperature, d.beta,
                                                          d.normalize_topk).sum()
        if d.ce_alpha:
            total = total + d.ce_alpha * F.cross_entropy(student.float(), target[trained], reduction="sum")
        count = num_items_in_batch if num_items_in_batch is not None else trained.sum()
        loss = total / torch.clamp(torch.as_tensor(count, device=total.device), min=1)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())  # as Trainer.compute_loss
        return (loss, outputs) if return_outputs else loss

    @torch.no_grad()
    def _teacher_candidates(self, inputs: dict, trained: torch.Tensor, vocab: int):
        """The online teacher's log-probs on this batch at the scheduled temperature: its top
        kd_online_topk tokens, or its whole vocabulary (cut to the student's)."""
        d = self.distillation
        d.teacher.eval()
        logits = d.teacher(**inputs).logits[:, :-1][trained][..., :vocab].float()
        progress = self.state.global_step / max(1, self.state.max_steps or 1)
        logprobs = F.log_softmax(logits / d.teacher_temperature(progress), dim=-1)
        if d.online_topk is None:
            return torch.arange(vocab, device=logits.device).expand_as(logprobs), logprobs
        logprobs, ids = logprobs.topk(min(d.online_topk, vocab), dim=-1)
        if d.normalize_topk:
            logprobs = logprobs - torch.logsumexp(logprobs, dim=-1, keepdim=True)
        return ids, logprobs


def load_teacher(cfg: Config, precision, tokenizer):
    """The frozen teacher of `teacher_model`, in the run's precision. Its tokens must be the
    student's (tokens the student's config adds aside), or the two distributions would compare
    different tokens."""
    import transformers

    from axo.errors import AxoError
    from axo.model.preflight import attention_backend, torch_dtype
    from axo.model.sources import from_source

    path = cfg.rl.teacher_model
    teacher = from_source("teacher_model", path, lambda: transformers.AutoModelForCausalLM.from_pretrained(
        path, dtype=torch_dtype(precision), attn_implementation=attention_backend(cfg.model.attn_implementation),
        trust_remote_code=cfg.model.trust_remote_code))
    ours = tokenizer.get_vocab()
    try:
        theirs = transformers.AutoTokenizer.from_pretrained(path).get_vocab()
    except (OSError, ValueError):
        theirs = {}  # a teacher folder without a tokenizer: only its embedding size can be checked
    differing = [token for token, i in theirs.items() if ours.get(token) != i]
    if differing:
        raise AxoError(f"`teacher_model` {path!r} numbers its tokens differently from the student's tokenizer "
                       f"({len(differing)} of {len(theirs)} tokens, e.g. {differing[0]!r}): distillation compares "
                       "the same tokens. Fix: a teacher of the same family (same tokenizer).")
    rows = teacher.get_input_embeddings().weight.shape[0]
    if rows < len(tokenizer):
        raise AxoError(f"`teacher_model` {path!r} has {rows} token embeddings, fewer than the student's {len(tokenizer)} "
                       "tokens. Fix: a teacher of the same family, or no added tokens.")
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher
