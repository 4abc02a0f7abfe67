"""What axo knows of Axolotl's format: every key it has, and the old spellings axo accepts."""

from functools import cache
from importlib import resources

# Axolotl name -> axo name. Applied once at load; nothing reads the old name after that.
ALIASES = {
    "type_of_model": "model_type",
    "revision_of_model": "model_revision",
    "model_config": "overrides_of_model_config",  # pydantic reserves the name model_config
    "model_kwargs": "overrides_of_model_kwargs",
}
# Axolotl's attention booleans -> the attn_implementation each one means when true.
ATTENTION_FLAGS = {
    "flash_attention": "flash_attention_2",
    "sdp_attention": "sdpa",
    "eager_attention": "eager",
    "flex_attention": "flex_attention",
}
# Inside a dataset entry: Axolotl's older spelling -> key of `message_property_mappings`.
MESSAGE_FIELD_ALIASES = {"message_field_role": "role", "message_field_content": "content"}


def rename_dataset_aliases(entry: dict) -> dict:
    if not any(k in entry for k in MESSAGE_FIELD_ALIASES):
        return entry
    entry = dict(entry)
    mapping = dict(entry.get("message_property_mappings") or {})
    for old, prop in MESSAGE_FIELD_ALIASES.items():
        if entry.get(old) is not None:
            mapping.setdefault(prop, entry.pop(old))
        entry.pop(old, None)
    entry["message_property_mappings"] = mapping
    return entry


@cache
def axolotl_keys() -> dict[str, frozenset[str]]:
    """{'top': keys of the root config, 'dataset': keys of one `datasets:` entry}."""
    sections: dict[str, set[str]] = {}
    current = None
    text = resources.files("axo.config").joinpath("axolotl_keys.txt").read_text()
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), set())
        else:
            current.add(line)
    return {name: frozenset(keys) for name, keys in sections.items()}


def is_off(value) -> bool:
    """A value that only turns a feature off, so ignoring the key changes nothing."""
    return value is None or value is False or value in ([], {}, "")
