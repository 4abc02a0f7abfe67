"""The reward of `rl: ebft` (energy-based fine-tuning, Jelassi et al. 2026, arXiv 2603.12248), as
Axolotl computes it in structured mode. For each sampled answer y_j to a prompt with reference y:

    reward_j = alignment_coef * 2 cos(phi(y_j), phi(y)) - diversity_coef * 2 mean_{k != j} phi(y_j) . phi(y_k)

phi is the frozen starting model's hidden states at `feature_layers`, concatenated and pooled to one
vector (`embed_method`) of prompt + answer, then L2-normalised, or whitened by the SVD of the
prompt's sampled answers (`use_whitening`). The frozen model is the base under the adapter when
one trains (peft's `disable_adapter`), else a copy taken before training.

TRL's GRPOTrainer does the rest: the two terms are two reward functions (logged as
rewards/ebft_alignment and rewards/ebft_diversity) weighted by the two coefficients."""

import contextlib
import copy
import logging

import torch
import torch.nn.functional as F

from axo.config.rl import EBFTOptions

log = logging.getLogger("axo")


class FeatureMatching:
    def __init__(self, model, tokenizer, options: EBFTOptions, max_length: int, chat_template_kwargs=None):
        self.model, self.tokenizer, self.options = model, tokenizer, options
        self.max_length, self.template_kwargs = max_length, chat_template_kwargs or {}
        self.shared = hasattr(model, "disable_adapter")  # a peft model: its base is the starting model
        self.frozen = None if self.shared else copy.deepcopy(model).eval().requires_grad_(False)
        config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        self.layers = [int(depth * config.num_hidden_layers) for depth in options.feature_layers]
        self._last = (None, None)
        log.info("EBFT: features from hidden states %s of %d layers (%s), %s", self.layers, config.num_hidden_layers,
                 options.embed_method, "the base under the adapter" if self.shared else "a frozen copy")

    @property
    def reward_funcs(self) -> list:
        return [self.ebft_alignment, self.ebft_diversity]

    @property
    def reward_weights(self) -> list[float]:
        return [self.options.alignment_coef, -self.options.diversity_coef]

    def ebft_alignment(self, prompts, completions, ground_truth=None, **kwargs) -> list[float]:
        return self._scores(prompts, completions, ground_truth)[0]

    def ebft_diversity(self, prompts, completions, ground_truth=None, **kwargs) -> list[float]:
        return self._scores(prompts, completions, ground_truth)[1]

    def _scores(self, prompts, completions, ground_truth) -> tuple[list[float], list[float]]:
        """(alignment, diversity) of every completion, computed once per batch (TRL calls each
        reward function with the same batch in turn)."""
        if ground_truth is None:
            from axo.errors import AxoError

            raise AxoError("`rl: ebft` rows need a `ground_truth` column (the reference answer) next to `prompt`; "
                           "a transform such as `type: ebft_opencode.transform` makes one.")
        key = (tuple(map(str, prompts)), tuple(map(str, completions)))
        if self._last[0] != key:
            self._last = (key, self._compute(prompts, completions, ground_truth))
        return self._last[1]

    @torch.no_grad()
    def _compute(self, prompts, completions, ground_truth):
        prompt_texts = [self._prompt_text(p) for p in prompts]
        answers = [c if isinstance(c, str) else (c[0].get("content") or "" if c else "") for c in completions]
        groups = _runs(list(zip(prompt_texts, ground_truth)))
        firsts = [start for start, _ in groups]
        sampled = self._features([prompt_texts[i] + a for i, a in enumerate(answers)], prompt_texts)
        reference = self._features([prompt_texts[i] + ground_truth[i] for i in firsts],
                                   [prompt_texts[i] for i in firsts])
        alignment, diversity = [], []
        for (start, size), ref in zip(groups, reference):
            a, d = group_rewards(sampled[start:start + size], ref, self.options.use_whitening)
            alignment += a.tolist()
            diversity += d.tolist()
        return alignment, diversity

    def _prompt_text(self, prompt) -> str:
        if isinstance(prompt, str):
            return prompt
        return self.tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True,
                                                  **self.template_kwargs)

    def _features(self, texts: list[str], prompt_texts: list[str]) -> torch.Tensor:
        """One pooled feature vector per text, from the frozen model, right-padded batch."""
        tok = self.tokenizer
        ids = [tok(t, add_special_tokens=False)["input_ids"][:self.max_length] for t in texts]
        longest = max(len(i) for i in ids)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        device = next(self.model.parameters()).device
        input_ids = torch.tensor([i + [pad] * (longest - len(i)) for i in ids], device=device)
        mask = torch.tensor([[1] * len(i) + [0] * (longest - len(i)) for i in ids], device=device)
        network, context = self._network()
        with context:
            was_training = network.training
            network.eval()
            hidden = _body(network)(input_ids=input_ids, attention_mask=mask, output_hidden_states=True).hidden_states
            network.train(was_training)
        features = torch.cat([hidden[i] for i in self.layers], dim=-1).float()
        prompt_lens = None
        if self.options.embed_method == "completion_mean":  # the only pooling that needs where the answer starts
            prompt_lens = torch.tensor([len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompt_texts],
                                       device=device)
        return pool(features, mask, prompt_lens, self.options.embed_method)

    def _network(self):
        if self.shared:
            return self.model, self.model.disable_adapter()
        return self.frozen, contextlib.nullcontext()


def _body(model):
    """The decoder without the output head: the head's logits are not features."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder() if hasattr(base, "get_decoder") else base


def _runs(keys: list) -> list[tuple[int, int]]:
    """(start, size) of each run of equal consecutive keys: the completions of one prompt, which TRL
    places next to each other."""
    runs = []
    for i, key in enumerate(keys):
        if runs and keys[runs[-1][0]] == key:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((i, 1))
    return runs


def pool(features: torch.Tensor, mask: torch.Tensor, prompt_lens: torch.Tensor | None, method: str) -> torch.Tensor:
    """[batch, seq, dim] features of right-padded sequences -> [batch, dim'] per `embed_method`."""
    lengths = mask.sum(dim=1)
    rows = torch.arange(features.shape[0], device=features.device)
    if method == "last_token":
        return features[rows, lengths - 1]
    if method == "concat":
        return torch.cat([features[rows, (lengths * q // 4).clamp(max=features.shape[1] - 1)] for q in (1, 2, 3)],
                         dim=-1)
    keep = mask.bool()
    if method == "completion_mean":
        keep &= torch.arange(features.shape[1], device=features.device)[None] >= prompt_lens[:, None]
    weights = keep.unsqueeze(-1).float()
    return (features * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)


def group_rewards(sampled: torch.Tensor, reference: torch.Tensor, whiten: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(alignment, diversity) of one prompt's n sampled answers [n, dim] against its reference [dim]."""
    if whiten and len(sampled) > 1:
        sampled, reference = _whitened(sampled, reference)
    else:
        sampled, reference = F.normalize(sampled, dim=-1), F.normalize(reference, dim=-1)
    alignment = 2 * F.cosine_similarity(sampled, reference[None], dim=-1)
    n = len(sampled)
    if n == 1:
        return alignment, torch.zeros(1)
    dots = sampled @ sampled.T
    diversity = 2 * (dots.sum(dim=1) - dots.diagonal()) / (n - 1)
    return alignment, diversity


def _whitened(sampled: torch.Tensor, reference: torch.Tensor, tol: float = 1e-5):
    """Both through W = U diag(1/s) U^T from the SVD of the sampled features (feature space;
    directions with singular values below tol x the largest are dropped)."""
    u, s, _ = torch.linalg.svd(sampled.T, full_matrices=False)
    inverse = torch.where(s > tol * s.max(), 1 / (s + 1e-12), torch.zeros_like(s))
    w = (u * inverse) @ u.T
    return sampled @ w, reference @ w
