"""One module per dataset `type`. Each turns a raw row into (prompt, response) text and
says which columns it needs; tokenization and label masking are shared (`axo.data.tokenize`)."""

from types import ModuleType

from axo.data.formats import alpaca

FORMATS: dict[str, ModuleType] = {"alpaca": alpaca}


def get_format(name: str) -> ModuleType:
    return FORMATS[name]  # the config only admits names in FORMATS


def inference_prompt(dataset_type: str, text: str) -> str:
    """What the model is shown for a user's prompt: the same text as in training."""
    return get_format(dataset_type).prompt(text)
