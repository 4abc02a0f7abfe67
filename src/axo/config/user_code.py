"""The user's own Python named in a config (GRPO reward functions, row transforms), imported and
checked when the config loads, before any model: a typo costs seconds, not a model load."""

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Callable


# Row transforms Axolotl ships under these names, written in axo (data/transforms.py). A module of
# the same name next to the config still wins.
AXOLOTL_TRANSFORMS = {
    "ebft_opencode.transform": "ebft_opencode",
    "ebft_reasoning.transform": "ebft_reasoning",
    "ebft_reasoning.transform_answer_only": "ebft_reasoning_answer_only",
}
# The ones axo does not have, with why.
AXOLOTL_TRANSFORMS_REFUSED = {
    **dict.fromkeys(("ebft_pretrain.transform", "ebft_strided_structured.transform", "ebft_strided_chat.transform",
                     "ebft_reasoning.transform_strided"), "Axolotl's transform for strided EBFT, which is not in axo yet"),
    **dict.fromkeys(("ebft_chat_multiturn.transform", "ebft_chat_multiturn.transform_last_turn",
                     "ebft_chat_multiturn.transform_all_turns"),
                    "Axolotl's transform for multi-turn EBFT (each later turn generated in turn), not in axo yet"),
    "ebft_reasoning.transform_split_thinking": "Axolotl's transform that moves <think> into reasoning_content, "
                                               "which axo does not have (ebft_reasoning.transform keeps it)",
}


def resolve(dotted: str) -> Callable:
    """`package.module.function` -> the function (modules next to the config are importable)."""
    module_name, _, name = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if dotted not in AXOLOTL_TRANSFORMS or err.name != module_name.split(".")[0]:
            raise
        from axo.data import transforms

        return getattr(transforms, AXOLOTL_TRANSFORMS[dotted])
    return getattr(module, name)


def make_importable(config_dir: Path) -> None:
    """Modules sitting next to the config import like installed ones, and win over a module of
    the same name imported earlier from elsewhere (another config's folder, in the same process)."""
    folder = str(config_dir.resolve())
    if folder in sys.path:
        sys.path.remove(folder)
    sys.path.insert(0, folder)
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and "." not in name and (config_dir / f"{name}.py").is_file() and str(Path(file).resolve().parent) != folder:
            del sys.modules[name]


def check_user_code(data, rl) -> list:
    """Problems (key path, message) of the reward functions and row transforms a config names."""
    problems = []
    funcs = (rl.trl.reward_funcs if rl.trl else None) or []
    for i, dotted in enumerate(funcs):
        problems += _check(dotted, ("trl", "reward_funcs", i), _is_reward_function,
                           "a reward function takes (completions, **kwargs) and returns one float per completion")
    for list_key in ("datasets", "test_datasets"):
        for i, ds in enumerate(getattr(data, list_key) or []):
            if ds.is_transform:
                problems += _check(ds.type, (list_key, i, "type"), _is_transform,
                                   "a transform takes one row (a dict) and returns a dict with `prompt`")
    return problems


def _check(dotted: str, key: tuple, valid, shape: str) -> list:
    if dotted in AXOLOTL_TRANSFORMS_REFUSED and importlib.util.find_spec(dotted.rpartition(".")[0]) is None:
        return [(key, f"`{dotted}` is {AXOLOTL_TRANSFORMS_REFUSED[dotted]}; axo has ebft_opencode.transform and "
                      "ebft_reasoning.transform(_answer_only) for structured EBFT")]
    try:
        func = resolve(dotted)
    except (ImportError, AttributeError, ValueError) as err:
        return [(key, f"cannot import {dotted!r} ({type(err).__name__}: {err}). Fix: put the module next to "
                      "the config or install it, and check the name.")]
    if not callable(func) or not valid(func):
        return [(key, f"{dotted!r} has the wrong signature {_signature(func)}; {shape}.")]
    return []


def _is_reward_function(func) -> bool:
    """TRL calls it with keywords: prompts, completions, completion_ids and the row's columns, so it
    must take **kwargs."""
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(func).parameters.values())


def _is_transform(func) -> bool:
    positional = [p for p in inspect.signature(func).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 1


def _signature(func) -> str:
    try:
        return str(inspect.signature(func))
    except (TypeError, ValueError):
        return "(unknown)"
