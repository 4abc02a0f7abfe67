"""Where the training data comes from and how it is turned into tokens and labels."""

import re
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, field_validator

from axo.config.base import Area

# Dataset `type`s axo implements (Axolotl's names). Rows with input_ids need no type.
SUPPORTED_TYPES = ("alpaca", "chat_template", "completion", "input_output")
# What SFT reads: those, a mapping under `type:` (user_defined) and rows already holding input_ids.
SFT_TYPES = SUPPORTED_TYPES + ("user_defined", "pretokenized")
AXOLOTL_TYPES = (
    "pretrain", "alpaca_chat", "alpaca_w_system", "oasst", "gpteacher", "reflection",
    "explainchoice", "concisechoice", "summarizetldr", "metharme", "bradley_terry",
    "stepwise_supervised", "orcamini", "pygmalion", "context_qa", "dpo", "kto", "orpo",
)
# Preference rows (rl: dpo, ipo, orpo, simpo; reward models), Axolotl's names. chatml.* and
# llama3.* imply that chat template.
PREFERENCE_TYPES = (
    "chat_template.default", "chat_template.argilla", "chatml.intel", "chatml.prompt_pairs", "chatml.argilla",
    "chatml.ultra", "llama3.intel", "llama3.prompt_pairs", "llama3.argilla", "llama3.ultra",
    "bradley_terry.chat_template",
    "user_defined.default",  # given as a mapping under `type:`
)
KTO_TYPES = ("kto", "chatml.ultra", "llama3.ultra")  # ultra: {system, prompt, completion, label}
STEPWISE_TYPES = ("stepwise_supervised",)  # process reward models
# Axolotl's instruction types, `KIND[:STYLE]` (alpaca:chat, jeopardy, oasst:chatml): all written by the
# alpaca format (data/formats/alpaca.py holds each kind's columns and each style's text).
ALPACA_KINDS = ("alpaca", "jeopardy", "oasst", "gpteacher")
ALPACA_STYLES = ("instruct", "chat", "chatml", "phi")
# Axolotl's prompt strategies of that family, `module` or `module.load_x` -> (kind, style, system text):
# the same format with the columns, turns and system text of that release's prompter (alpaca.py).
AXOLOTL_PROMPTERS = {
    "alpaca_chat": ("alpaca", "chat", "alpaca"),
    "alpaca_chat.load_concise": ("alpaca", "chat", "concise"),
    "alpaca_chat.load_qa": ("qa", "chat", "concise"),
    "alpaca_chat.load_camel_ai": ("camel_ai", "chat", "concise"),
    "alpaca_chat.load_no_prompt": ("alpaca", "chat", "none"),
    "alpaca_instruct": ("alpaca", "instruct", "alpaca"),
    "alpaca_instruct.load_no_prompt": ("alpaca", "instruct", "none"),
    "alpaca_w_system": ("with_system", "chat", "none"),
    "alpaca_w_system.load_chat": ("with_system", "chat", "none"),
    "alpaca_w_system.load_instruct": ("with_system", "instruct", "none"),
    "alpaca_w_system.load_open_orca": ("open_orca", "open_orca", "none"),
    "alpaca_w_system.load_open_orca_chatml": ("open_orca", "chatml", "none"),
    "context_qa": ("context", "chat", "context"),
    "context_qa.load_404": ("context_404", "chat", "context"),
    "context_qa.load_v2": ("context_v2", "bare", "none"),
}


def alpaca_type(name: str) -> tuple[str, str, str] | None:
    """`alpaca:chat` -> ("alpaca", "chat", "alpaca"), `jeopardy` -> ("jeopardy", "instruct", "alpaca"),
    `alpaca_chat.load_qa` -> ("qa", "chat", "concise"); None for other types."""
    if name in AXOLOTL_PROMPTERS:
        return AXOLOTL_PROMPTERS[name]
    kind, _, style = name.partition(":")
    style = style or "instruct"
    return (kind, style, "alpaca") if kind in ALPACA_KINDS and style in ALPACA_STYLES else None


EndPolicy = Literal["all", "turn", "last", "none"]
TRANSFORM_PATH = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")  # a dotted path to a row transform
TRANSFORM = "transform"  # the row type of such a path
CHAT_KEYS = (
    "field_messages", "message_property_mappings", "roles", "roles_to_train", "train_on_eos",
    "train_on_eot", "message_field_training", "drop_system_message", "field_tools",
    "chat_template", "chat_template_jinja", "field_thinking", "template_thinking_key",
)


class UserDefinedFormat(Area):
    """`type:` given as a mapping: an alpaca-like prompt with your own field names and text."""

    system_prompt: str = Field("", description="System text put before every prompt.")
    field_system: str | None = Field(None, description="Column with a per-row system text.")
    system_format: str = Field("{system}\n\n", description="How the system text is written; `{system}`.")
    field_instruction: str = Field("instruction", description="Column with the instruction.")
    field_input: str = Field("input", description="Column with the optional input.")
    field_output: str = Field("output", description="Column with the response (trained).")
    format: str = Field("{instruction}\n{input}\n", description="Prompt with `{instruction}` and `{input}`.")
    no_input_format: str = Field("{instruction}\n", description="Prompt when the input is empty.")


class UserDefinedPreference(Area):
    """`type:` as a mapping for preference rows (Axolotl's user_defined.default): plain text, no chat template."""

    field_prompt: str = Field("prompt", description="Column with the prompt.")
    field_system: str = Field("system", description="Column with an optional system text.")
    field_chosen: str = Field("chosen", description="Column with the chosen answer.")
    field_rejected: str = Field("rejected", description="Column with the rejected answer.")
    prompt_format: str = Field("{prompt}", description="Prompt text, with `{prompt}` and `{system}`.")
    chosen_format: str = Field("{chosen}", description="Chosen answer text, with `{chosen}`.")
    rejected_format: str = Field("{rejected}", description="Rejected answer text, with `{rejected}`.")


class DatasetConfig(Area):
    """One entry of `datasets:` or `test_datasets:`."""

    path: str = Field(description="Local file or folder, a hub dataset id, or an fsspec URI (s3://, gs://, https://).")
    type: str | UserDefinedFormat | UserDefinedPreference | None = Field(
        None, description="Row format: " + ", ".join(SUPPORTED_TYPES)
        + ", or a user-defined mapping. Unset for rows that already hold input_ids.",
    )
    data_files: str | list[str] | None = Field(None, description="Files (or globs) inside `path`.")
    ds_type: Literal["json", "parquet", "csv", "arrow", "text"] | None = Field(
        None, description="File format, when the extension does not say."
    )
    name: str | None = Field(None, description="Hub dataset configuration name.")
    split: str = Field("train", description="Split to read.")
    revision: str | None = Field(None, description="Hub dataset revision.")
    # completion
    field: str | None = Field(None, description="completion: the text column (default `text`).")
    # chat_template
    field_messages: str = Field("messages", description="chat_template: the column holding the conversation.")
    message_property_mappings: dict[str, str] = Field(
        default_factory=dict,
        description="chat_template: message keys to read, e.g. {role: from, content: value} for sharegpt.",
    )
    roles: dict[str, list[str]] | None = Field(
        None, description="chat_template: target role -> source names, e.g. {assistant: [gpt], user: [human]}."
    )
    roles_to_train: list[str] = Field(["assistant"], description="chat_template: roles whose turns are trained.")
    train_on_eos: EndPolicy = Field(
        "turn", description="chat_template: which EOS tokens are trained: all, turn (of trained turns), last, none."
    )
    train_on_eot: EndPolicy | None = Field(
        None, description="chat_template: the same for end-of-turn tokens (default: as train_on_eos)."
    )
    message_field_training: str | None = Field(
        None, description="chat_template: message key with a per-message true/false that overrides roles_to_train."
    )
    drop_system_message: bool = Field(False, description="chat_template: drop system messages.")
    field_thinking: str | None = Field(
        None, description="chat_template: message key holding the reasoning trace, passed to the template as "
        "`template_thinking_key`.")
    template_thinking_key: str | None = Field(
        None, description="chat_template: the message key the template reads reasoning from (reasoning_content).")
    field_tools: str = Field("tools", description="chat_template: the column with tool definitions, if any.")
    chat_template: str | None = Field(None, description="chat_template: template for this dataset only.")
    chat_template_jinja: str | None = Field(None, description="chat_template: Jinja text for this dataset only.")
    # stepwise_supervised (process reward models)
    step_separator: str = Field("\n", description="stepwise_supervised: text between steps; its last token is scored.")
    train_on_last_step_only: bool = Field(False, description="stepwise_supervised: score only the final step.")
    shards: int | None = Field(None, gt=0, description="Train on one of this many shards of the entry's rows (after "
                               "a shuffle seeded by `seed`, as Axolotl does).")
    shards_idx: int = Field(0, ge=0, description="Which shard (from 0) `shards` keeps.")
    # knowledge distillation (`kd_trainer: true`)
    logprobs_field: str | None = Field(
        None, description="KD: the column with the teacher's top-k log-probs of each token (vLLM's prompt_logprobs: "
        "per token a {token_id: logprob} map, null where there is none; or Axolotl's lists), aligned with the row's "
        "tokens from the end when shorter.")
    temperature: float = Field(1.0, gt=0, description="KD: the temperature those log-probs were computed at.")
    # preference rows
    field_chosen: str = Field("chosen", description="chat_template.default: the column with the chosen answer.")
    field_rejected: str = Field("rejected", description="chat_template.default: the column with the rejected answer.")

    @field_validator("type")
    @classmethod
    def _supported(cls, value):
        if value is None or isinstance(value, (UserDefinedFormat, UserDefinedPreference)) \
                or value in SUPPORTED_TYPES + PREFERENCE_TYPES + KTO_TYPES + STEPWISE_TYPES:
            return value
        if alpaca_type(value):  # alpaca, alpaca:chat, jeopardy, oasst:chatml...: the alpaca format
            return value
        if value == "sharegpt":
            raise ValueError(
                "type 'sharegpt' is replaced by chat_template: use `type: chat_template`, "
                "`field_messages: conversations`, `message_property_mappings: {role: from, content: value}` "
                "and `roles: {user: [human], assistant: [gpt]}`"
            )
        if TRANSFORM_PATH.match(value) and value.split(".")[0] not in ("chat_template", "chatml", "llama3", "alpaca"):
            return value  # my_module.transform: checked (imported) when the config loads
        from axo.config.compat import REFUSED_VALUES

        if value in REFUSED_VALUES["datasets.type"]:
            raise ValueError(f"`{value}`: {REFUSED_VALUES['datasets.type'][value]}")
        if value in ("json", "jsonl", "csv", "parquet", "arrow", "text"):
            raise ValueError(f"`{value}` is a file format, which `ds_type` names (axo reads it from the file's "
                             "extension); `type` is the row format: " + ", ".join(SUPPORTED_TYPES))
        if value.split(".")[0] in AXOLOTL_TYPES:
            raise ValueError(f"dataset type {value!r} is not supported yet; supported: " + ", ".join(SUPPORTED_TYPES))
        raise ValueError(f"unknown dataset type {value!r}; supported: " + ", ".join(SUPPORTED_TYPES))

    def check(self):
        fields = type(self).model_fields
        changed = [k for k in fields if k not in ("path", "type")
                   and getattr(self, k) != fields[k].get_default(call_default_factory=True)]
        for key in changed:
            if key in CHAT_KEYS and self.type != "chat_template" and self.type_name not in PREFERENCE_TYPES:
                yield (key,), f"only applies to `type: chat_template` (this entry has type {self.type_name!r})"
            elif key == "field" and self.type != "completion":
                yield (key,), "only applies to `type: completion`"
            elif key == "shards_idx" and (not self.shards or self.shards_idx >= self.shards):
                yield (key,), f"picks a shard of `shards` ({self.shards}); it must be below it"
            elif key in ("step_separator", "train_on_last_step_only") and self.type != "stepwise_supervised":
                yield (key,), "only applies to `type: stepwise_supervised`"
            elif key in ("field_chosen", "field_rejected") and self.type_name not in PREFERENCE_TYPES:
                yield (key,), "only applies to preference rows (chat_template.default, bradley_terry.chat_template)"

    @property
    def is_transform(self) -> bool:
        return isinstance(self.type, str) and bool(TRANSFORM_PATH.match(self.type)) and self.type not in (
            SUPPORTED_TYPES + PREFERENCE_TYPES + KTO_TYPES + STEPWISE_TYPES) and not alpaca_type(self.type)

    @property
    def row_type(self) -> str:
        """The type the method table lists: a row transform is "transform", else `type_name`."""
        return TRANSFORM if self.is_transform else self.type_name

    @property
    def type_name(self) -> str:
        if isinstance(self.type, UserDefinedFormat):
            return "user_defined"
        if isinstance(self.type, UserDefinedPreference):
            return "user_defined.default"
        if isinstance(self.type, str) and self.type != "alpaca" and alpaca_type(self.type):
            return "alpaca"  # Axolotl's older instruction types, written by the alpaca format
        return self.type or "pretokenized"

    @property
    def property_mappings(self) -> dict[str, str]:
        """Message key the template reads -> key in the data, reasoning traces included."""
        mappings = dict(self.message_property_mappings)
        if self.field_thinking:
            mappings[self.template_thinking_key or "reasoning_content"] = self.field_thinking
        return mappings

    @property
    def eot_policy(self) -> EndPolicy:
        return self.train_on_eot or self.train_on_eos


class PretrainingDatasetConfig(Area):
    """One entry of `pretraining_dataset:`: raw text streamed and tokenized on the fly."""

    path: str = Field(description="Local file or folder, hub id, or fsspec URI.")
    name: str | None = Field(None, description="Hub dataset configuration name.")
    split: str = Field("train", description="Split to read.")
    data_files: str | list[str] | None = Field(None, description="Files (or globs) inside `path`.")
    ds_type: Literal["json", "parquet", "csv", "arrow", "text"] | None = Field(None, description="File format.")
    revision: str | None = Field(None, description="Hub dataset revision.")
    text_column: str = Field("text", description="Column holding the text.")
    type: Literal["pretrain"] | None = Field(None, description="Accepted for Axolotl compatibility.")


class DataConfig(Area):
    datasets: list[DatasetConfig] | None = Field(None, description="Training datasets, mixed.")
    pretraining_dataset: list[PretrainingDatasetConfig] | None = Field(
        None, description="Raw-text datasets streamed and tokenized on the fly (needs max_steps)."
    )
    test_datasets: list[DatasetConfig] | None = Field(
        None, description="Held-out datasets for evaluation (instead of `val_set_size`)."
    )
    val_set_size: float = Field(
        0.0, ge=0.0,
        description="Hold out this fraction (<1) or this many rows (>=1) of the training data.",
    )
    sequence_len: int = Field(2048, gt=0, description="Longest sequence in tokens.")
    excess_length_strategy: Literal["drop", "truncate", "raise"] = Field(
        "drop", description="Rows longer than sequence_len: drop them, cut them, or stop with an error."
    )
    min_sample_len: int = Field(2, ge=1, description="Drop rows with fewer tokens than this.")
    sample_packing: bool = Field(
        False, description="Pack several rows into each sequence of sequence_len tokens, each row isolated."
    )
    eval_sample_packing: bool | None = Field(None, description="Pack eval rows too (default: as sample_packing).")
    sample_packing_sequentially: bool = Field(
        False, description="Pack rows in their order (next-fit) instead of first-fit-decreasing, and keep that order."
    )
    pad_to_sequence_len: bool = Field(False, description="Pad every batch to sequence_len (one shape for all steps).")
    train_on_inputs: bool = Field(
        False, description="Also train on the prompt; by default only the response and EOS are."
    )
    chat_template: str | None = Field(
        None, description="chat_template datasets: tokenizer_default, chatml, llama3, alpaca, jinja (with "
        "chat_template_jinja), or a model family's name (gemma3, qwen3_5...: the model's own template)."
    )
    chat_template_jinja: str | None = Field(None, description="A Jinja chat template (sets chat_template: jinja).")
    eot_tokens: list[str] | None = Field(
        None, description="End-of-turn tokens (default: found in the template, else the EOS token)."
    )
    default_system_message: str | None = Field(
        None, description="chat_template: system message added to conversations that have none."
    )
    chat_template_kwargs: dict[str, Any] | None = Field(
        None, description="Variables every chat-template rendering gets, e.g. {enable_thinking: false} or "
        "{reasoning_effort: low}: in SFT rows, preference rows (TRL reads them per row) and GRPO prompts.")
    shuffle_merged_datasets: bool = Field(True, description="Shuffle rows after mixing the datasets.")
    image_size: int | tuple[int, int] | None = Field(
        None, description="Image-text rows: resize every image before the processor sees it: a number N fits it "
        "in an N x N square, aspect kept, padded black; [width, height] resizes to exactly that.")
    image_resize_algorithm: Literal["bilinear", "bicubic", "lanczos"] = Field(
        "bilinear", description="Image-text rows: how `image_size` resamples.")
    curriculum_sampling: bool = Field(
        False, description="Train the rows in the order of the data (no shuffling, a sequential sampler).")
    dataset_exact_deduplication: bool = Field(
        False, description="Drop rows whose tokens repeat, and eval rows that also appear in training."
    )
    skip_bad_rows: bool = Field(
        False, description="Skip (and count) rows with missing or malformed fields instead of stopping."
    )
    push_dataset_to_hub: str | None = Field(
        None, description="Also push the prepared data to this hub dataset repo (org/name).")
    dataset_prepared_path: str | None = Field(
        None, description="Folder for the tokenized-dataset cache (default: output_dir/prepared)."
    )
    dataset_processes: int | None = Field(None, gt=0, description="Workers for tokenization.")

    def check(self):
        if not self.datasets and not self.pretraining_dataset:
            yield (), "no training data: add `datasets:` (or `pretraining_dataset:`)"
        yield from _unknown_templates(self)
        if self.datasets and self.pretraining_dataset:
            yield ("pretraining_dataset",), "set either `datasets` or `pretraining_dataset`, not both"
        if self.test_datasets and self.val_set_size:
            yield ("val_set_size",), "set either `val_set_size` or `test_datasets`, not both"
        if self.pretraining_dataset and self.val_set_size:
            yield ("val_set_size",), "cannot split a streamed `pretraining_dataset`; use `test_datasets`"

    @property
    def pack_eval(self) -> bool:
        return self.sample_packing if self.eval_sample_packing is None else self.eval_sample_packing

    @property
    def has_eval(self) -> bool:
        return bool(self.test_datasets) or self.val_set_size > 0

    @property
    def template_name(self) -> str | None:
        return "jinja" if self.chat_template_jinja and not self.chat_template else self.chat_template


def _unknown_templates(data) -> Iterator:
    """Template names checked with the config, not when the tokenizer loads minutes later."""
    import difflib

    from axo.data.templates import BUILTIN, FAMILIES, known_template

    names = [*BUILTIN, *FAMILIES, "tokenizer_default", "jinja"]
    found = [(("chat_template",), data.chat_template)]
    for list_key in ("datasets", "test_datasets"):
        found += [((list_key, i, "chat_template"), ds.chat_template) for i, ds in enumerate(getattr(data, list_key) or [])]
    for where, name in found:
        if name and not known_template(name):
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"did you mean `{close[0]}`? " if close else ""
            yield where, (f"unknown template {name!r}; {hint}axo knows tokenizer_default, {', '.join(BUILTIN)}, jinja "
                          f"(with chat_template_jinja), tokenizer_default_fallback_<one of those>, and the model "
                          f"families' names ({', '.join(FAMILIES)})")
