"""The user's own Python named in a config (GRPO reward functions, row transforms), imported and
checked when the config loads, before any model: a typo costs seconds, not a model load."""

import hashlib
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
    """`module.function` -> the function: from `module.py` (or the package `module/`) next to a loaded
    config when there is one, else the installed module of that name."""
    module_name, _, name = dotted.rpartition(".")
    module = _user_module(module_name)
    if module is None:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if dotted not in AXOLOTL_TRANSFORMS or err.name != module_name.split(".")[0]:
                raise
            from axo.data import transforms

            return getattr(transforms, AXOLOTL_TRANSFORMS[dotted])
    return getattr(module, name)


# The folder of the config loaded last in this process (one, so that another config's code is
# never picked up).
CONFIG_DIRS: list[Path] = []


def make_importable(config_dir: Path) -> None:
    """Code next to the config is found by `resolve`, which loads the module a config names from
    its file under a private name: a `json.py` or `datasets.py` next to the config never replaces
    the real module, and nothing already imported is touched. The folder goes at the end of the
    import path, so the user's module can import its own helpers next to it, never ahead of an
    installed module."""
    folder = config_dir.resolve()
    CONFIG_DIRS[:] = [folder]
    if str(folder) not in sys.path:
        sys.path.append(str(folder))


def _user_file(top: str) -> tuple[Path, Path] | None:
    """(config folder, file) of the module `top` next to a loaded config."""
    for folder in CONFIG_DIRS:
        for file in (folder / f"{top}.py", folder / top / "__init__.py"):
            if file.is_file():
                return folder, file
    return None


def _user_module(module_name: str):
    top, _, rest = module_name.partition(".")
    found = _user_file(top)
    if found is None:
        return None
    folder, file = found
    private = f"_axo_user_{hashlib.sha1(str(folder).encode()).hexdigest()[:10]}_{top}"
    if private not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            private, file, submodule_search_locations=[str(file.parent)] if file.name == "__init__.py" else None)
        module = importlib.util.module_from_spec(spec)
        sys.modules[private] = module  # registered first: pickling by reference (data workers) finds it
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[private]
            raise
    return importlib.import_module(f"{private}.{rest}") if rest else sys.modules[private]


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
    module = dotted.rpartition(".")[0]
    if dotted in AXOLOTL_TRANSFORMS_REFUSED and _user_file(module.split(".")[0]) is None and \
            importlib.util.find_spec(module) is None:
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
