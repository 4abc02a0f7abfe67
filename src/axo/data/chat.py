"""The chat setup of a run, resolved once right after the tokenizer loads: the template and
end-of-turn markers of each dataset, the template saved with the tokenizer (the one the trained
model chats with, and the one TRL renders preference rows with), and the tokens generation stops
at. Tokenization, the prepared-data fingerprint, the saved generation config and inference all read
this one object."""

import logging
from dataclasses import dataclass

from axo.config import Config
from axo.config.data import DatasetConfig
from axo.data.formats.base import Context
from axo.data.templates import end_of_turn_tokens, resolve_template
from axo.errors import AxoError

log = logging.getLogger("axo")

# Row type families whose rows are conversations, rendered with a chat template.
CHAT_FAMILIES = ("chat_template", "chatml", "llama3", "bradley_terry", "kto")


@dataclass(frozen=True)
class Chat:
    """How one dataset's conversations are rendered, and where their turns end."""

    template: str | None = None
    eot: tuple[str, ...] = ()


@dataclass(frozen=True)
class Processing:
    """What turns text into tokens for a run: the tokenizer, an image-text model's processor, and
    the chat setup resolved for both."""

    tokenizer: object
    processor: object | None
    chat: "ChatSetup"

    @property
    def processing_class(self):
        """What the Trainer saves next to the model."""
        return self.processor or self.tokenizer


def load_processing(cfg: Config, tokenizer=None) -> Processing:
    """The tokenizer (the config's, unless one is given: a trained folder's), an image-text model's
    processor, then the chat setup, resolved once for the whole run."""
    from axo.model.tokenizer import load_processor, load_tokenizer

    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(cfg)
    processor = load_processor(cfg, tokenizer) if cfg.model.task == "multimodal_lm" else None
    return Processing(tokenizer, processor, setup_chat(cfg, tokenizer, processor))


@dataclass(frozen=True)
class ChatSetup:
    datasets: tuple[Chat, ...]
    test_datasets: tuple[Chat, ...]
    stop_tokens: tuple[str, ...]  # EOS, then the training conversations' end-of-turn markers

    def of(self, list_key: str, index: int) -> Chat:
        return getattr(self, list_key)[index]


def setup_chat(cfg: Config, tokenizer, processor=None) -> ChatSetup:
    """Resolve every dataset's template, and put the run's template on the tokenizer, where it is
    saved with the trained model. An image-text model's own template is its processor's."""
    if processor is not None and getattr(processor, "chat_template", None):
        tokenizer.chat_template = processor.chat_template  # the one that knows image parts
    run = _run_template(cfg, tokenizer)
    if run is not None:
        tokenizer.chat_template = run
    chats = {key: tuple(_chat(cfg, ds, tokenizer) for ds in getattr(cfg.data, key) or [])
             for key in ("datasets", "test_datasets")}
    if not cfg.method.axo_batches:
        _one_template_for_the_library(cfg, chats, tokenizer)
    first = next((c for c in chats["datasets"] if c.template), Chat())
    if cfg.model.tokenizer_use_mistral_common:
        check_mistral_common(cfg, tokenizer, first.template or tokenizer.chat_template)
    stop = (tokenizer.eos_token,) + tuple(t for t in first.eot if t != tokenizer.eos_token)
    return ChatSetup(chats["datasets"], chats["test_datasets"], tuple(t for t in stop if t))


# A conversation with what tokenizers disagree on: a system turn, several turns, digits, trailing
# and double spaces, non-ASCII text, a newline inside an answer.
PROBE = [{"role": "system", "content": "You sort digits, briefly."},
         {"role": "user", "content": "Sort: 3 1 2 "}, {"role": "assistant", "content": "1 2 3"},
         {"role": "user", "content": "Und jetzt:  9 8 – schön?"}, {"role": "assistant", "content": "8 9\nfertig, ünï."}]


def check_mistral_common(cfg: Config, tokenizer, template: str | None) -> None:
    """`tokenizer_use_mistral_common`: the run's tokenizer and template must encode a conversation to
    exactly the ids mistral-common's own encoder gives, else training would teach another format."""
    from axo.model.tokenizer import mistral_reference

    mine = tokenizer.apply_chat_template(PROBE, chat_template=template, tokenize=True, return_dict=False)
    theirs = mistral_reference(cfg).apply_chat_template(PROBE, tokenize=True, return_dict=False)
    if list(mine) != list(theirs):
        at = next((i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b), min(len(mine), len(theirs)))
        raise AxoError("`tokenizer_use_mistral_common`: the run's chat template and tokenizer encode a "
                       f"conversation differently from mistral-common, from token {at} on "
                       f"({tokenizer.decode(mine[at:at + 8])!r} instead of {tokenizer.decode(theirs[at:at + 8])!r}). "
                       "Fix: remove `chat_template` (and any per-dataset template) so the one mistral-common writes "
                       "is used.")
    log.info("tokenizer_use_mistral_common: the run's tokenizer and chat template encode conversations exactly as "
             "mistral-common does (%d-token probe)", len(theirs))


def context(cfg: Config, chat: ChatSetup, list_key: str, index: int, tokenizer, processor=None) -> Context:
    """The context a dataset entry's rows are read in."""
    ds = getattr(cfg.data, list_key)[index]
    own = chat.of(list_key, index)
    return Context(ds, cfg.data, tokenizer, own.template, own.eot, processor, f"{list_key}[{index}]")


def is_chat(ds: DatasetConfig) -> bool:
    return ds.type_name.split(".")[0] in CHAT_FAMILIES or ds.is_transform


def _chat(cfg: Config, ds: DatasetConfig, tokenizer) -> Chat:
    if not is_chat(ds):
        return Chat()
    if ds.is_transform and not tokenizer.chat_template:
        return Chat()  # a transform's prompts may be plain text
    template = resolve_template(cfg.data, ds, tokenizer)
    return Chat(template, tuple(end_of_turn_tokens(cfg.data, template, tokenizer)))


def _run_template(cfg: Config, tokenizer) -> str | None:
    """The first training dataset's template when it is a conversation, else the top-level
    `chat_template` (which alpaca or completion rows never read, but the trained model keeps)."""
    first = next((ds for ds in cfg.data.datasets or [] if is_chat(ds) and not ds.is_transform), None)
    if first is not None:
        return resolve_template(cfg.data, first, tokenizer)
    return resolve_template(cfg.data, None, tokenizer) if cfg.data.template_name else None


def _one_template_for_the_library(cfg: Config, chats: dict, tokenizer) -> None:
    """TRL renders every conversation with the tokenizer's one template."""
    for key, entries in chats.items():
        for i, chat in enumerate(entries):
            if chat.template and chat.template != tokenizer.chat_template:
                raise AxoError(f"`{key}[{i}]` uses another chat template than the first dataset, but "
                               f"{cfg.method.name} renders every row with one template. Fix: give all datasets "
                               "the same `chat_template` (or the same chatml.* / llama3.* family).")
