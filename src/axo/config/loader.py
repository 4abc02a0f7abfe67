"""YAML + command-line overrides -> validated `Config`, with every problem reported at once,
each naming the key, its YAML line, the bad value and the fix."""

import difflib
import logging
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from axo.config.axolotl import ALIASES, ATTENTION_FLAGS, axolotl_keys, is_off, rename_dataset_aliases
from axo.config.base import Skipped
from axo.config.data import DatasetConfig
from axo.config.root import AREAS, KEY_AREA, Config, cross_area_problems
from axo.errors import ConfigError

log = logging.getLogger("axo")

DATASET_LISTS = ("datasets", "test_datasets")
Where = dict[tuple, str]  # key path -> "line 12" or "--learning_rate"


def load(path: str | Path, overrides: list[str] = ()) -> Config:
    """Read a YAML config, apply `--key value` overrides, validate once."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([f"config file {str(path)!r} does not exist"], source=str(path))
    try:
        raw, where = parse_yaml(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError([f"not valid YAML: {err}"], source=str(path)) from None
    except ConfigError as err:  # keys set twice
        raise ConfigError(err.problems, source=str(path)) from None
    if not isinstance(raw, dict):
        raise ConfigError(["the file must be a mapping of `key: value` lines"], source=str(path))
    apply_overrides(raw, where, list(overrides), str(path))
    from axo.config.user_code import make_importable

    make_importable(path.parent)  # reward functions and transforms next to the config are checked in validate
    return validate(raw, where, source=str(path))


def parse_yaml(text: str) -> tuple[Any, Where]:
    """Load YAML and remember the line of every mapping key, by its path."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is None:
        return {}, {}
    where: Where = {}
    duplicates: list[str] = []
    _record_lines(node, (), where, duplicates)
    if duplicates:
        raise ConfigError(duplicates)
    return yaml.safe_load(text), where


def _record_lines(node, path: tuple, where: Where, duplicates: list[str] | None = None) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key_path = path + (key_node.value,)
            line = f"line {key_node.start_mark.line + 1}"
            if key_path in where and duplicates is not None:
                duplicates.append(f"`{dotted(key_path)}` is set twice, {where[key_path]} and {line}; YAML would "
                                  "silently keep the second. Fix: keep one")
            where[key_path] = line
            _record_lines(value_node, key_path, where, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_lines(item, path + (i,), where, duplicates)


def apply_overrides(raw: dict, where: Where, args: list[str], source: str) -> None:
    """`--key value`, `--key=value`, `--a.b value`, `--datasets.0.path value`; a bare flag is true.
    Values are read as YAML scalars, then validated exactly like the file."""
    problems = []
    while args:
        arg = args.pop(0)
        if not arg.startswith("--") or arg == "--":
            problems.append(f"{arg!r}: expected an override like `--learning_rate 1e-4`")
            continue
        name, eq, text = arg[2:].partition("=")
        if not eq:
            text = args.pop(0) if args and not args[0].startswith("--") else "true"
        path = tuple(int(p) if p.isdigit() else p for p in name.split("."))
        try:
            _set_path(raw, path, yaml.safe_load(text))
            where[path] = f"--{name}"
        except (KeyError, IndexError, TypeError):
            problems.append(f"`--{name}`: there is no `{name}` in {source} to set")
    if problems:
        raise ConfigError(problems, source="command line")


def _set_path(node, path: tuple, value) -> None:
    for part in path[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            node = node[part]
    if isinstance(node, list) and path[-1] >= len(node):
        raise IndexError(path[-1])
    node[path[-1]] = value


def validate(raw: dict, where: Where | None = None, source: str = "config") -> Config:
    where = where or {}
    problems: list[str] = []
    raw = apply_compat(raw, where, problems)
    raw = _rename_aliases(raw, where, problems)
    routed: dict[str, dict] = {area: {} for area in AREAS}
    for key, value in raw.items():
        if key in KEY_AREA:
            if value is not None:  # Axolotl writes `key:` (null) to mean "default"
                routed[KEY_AREA[key]][key] = value
        else:
            problems += _foreign_key((key,), value, where, "top", KEY_AREA)
    for list_key in DATASET_LISTS:
        routed["data"][list_key] = _check_dataset_entries(raw.get(list_key), list_key, where, problems)
    routed["data"] = {k: v for k, v in routed["data"].items() if v is not None}
    areas = {}
    for name, model in AREAS.items():
        try:
            areas[name] = model(**routed[name])
        except ValidationError as err:
            problems += _describe_all(err, raw, where)
    # Cross-field rules of every valid area, and those across areas whose areas are all valid.
    found = [p for area in areas.values() for p in area.problems()] + cross_area_problems(areas)
    for path, message in found:
        if isinstance(message, Skipped):
            log.warning("`%s`%s is skipped: %s. What is learned does not change.", dotted(path), _at(path, where),
                        message)
        else:
            problems.append(_describe(path, message, where))
    if problems:
        raise ConfigError(sorted(problems, key=_line_number), source=source)
    return Config(**areas)


# Blocks whose own keys have rows in the compatibility table, and the axo model that reads each.
def _nested_models() -> dict:
    from axo.config.parallel import FSDPOptions
    from axo.config.quantization import QATScheme, TorchAOScheme
    from axo.config.rl import EBFTOptions, TRLOptions, VLLMOptions

    return {"fsdp_config": FSDPOptions, "trl": TRLOptions, "ebft": EBFTOptions, "vllm": VLLMOptions,
            "qat": QATScheme, "quantization": TorchAOScheme}


def apply_compat(raw: dict, where: Where, problems: list[str]) -> dict:
    """Axolotl's keys that axo maps, skips (speed only) or refuses, as config/compat.py's table says,
    settled before validation: a mapped key becomes the axo keys it means."""
    out = _apply_rules(raw, (), "", KEY_AREA, where, problems)
    _apply_values(out, where, problems)
    for block, model in _nested_models().items():
        if isinstance(out.get(block), dict):
            fields = set(model.model_fields) | {f"fsdp_{k}" for k in model.model_fields}
            out[block] = _apply_rules(out[block], (block,), f"{block}.", fields, where, problems)
    for list_key in DATASET_LISTS:
        if isinstance(out.get(list_key), list):
            out[list_key] = [_apply_rules(_modern_entry(e, (list_key, i), where), (list_key, i), "datasets.",
                                          DatasetConfig.model_fields, where, problems)
                             if isinstance(e, dict) else e for i, e in enumerate(out[list_key])]

    if out.get("plugins"):
        problems += _check_plugins(out.pop("plugins"), where)
    return out


def _modern_entry(entry: dict, path: tuple, where: Where) -> dict:
    """An old dataset type whose conversion is exact, converted; the modern spelling shown once."""
    from axo.config.compat import KD_TYPE, sharegpt_entry

    if str(entry.get("type", "")).startswith(KD_TYPE):  # Axolotl's KD rows: chat_template rows with log-probs
        log.info("`%s.type: %s`%s (Axolotl's KD plugin) reads as `type: chat_template` with `logprobs_field`",
                 dotted(path), entry["type"], _at(path + ("type",), where))
        return {**entry, "type": "chat_template", "logprobs_field": entry.get("logprobs_field") or "logprobs"}
    converted = sharegpt_entry(entry)
    if converted is None:
        return entry
    new, shown = converted
    log.info("`%s.type: %s`%s (old Axolotl) reads as {%s}", dotted(path), entry["type"], _at(path + ("type",), where),
             shown)
    return new


def _apply_values(out: dict, where: Where, problems: list[str]) -> None:
    """Axolotl's values that axo spells another way, or refuses."""
    from axo.config.compat import REFUSED_VALUES, RL_VARIANTS, VALUES, deepspeed_preset

    for key, value in list(out.items()):
        if not isinstance(value, str):
            continue
        at = _at((key,), where)
        if value in VALUES.get(key, {}):
            out[key], note = VALUES[key][value]
            log.info("`%s: %s`%s (Axolotl): %s", key, value, at, note)
        elif value in REFUSED_VALUES.get(key, {}):
            problems.append(f"`{key}: {value}`{at}: {REFUSED_VALUES[key][value]}")
            del out[key]
    if out.get("rl") in RL_VARIANTS:
        variant = out["rl"]
        key, value, note = RL_VARIANTS[variant]
        trl = dict(out.get("trl") or {})
        if trl.get(key, value) != value:
            problems.append(f"`rl: {variant}`{_at(('rl',), where)} means `trl.{key}: {value}`, but it is "
                            f"{trl[key]!r}; keep one (or `rl: grpo`)")
        out.update(rl="grpo", trl={**trl, key: value})
        log.info("`rl: %s`%s: %s, `rl: grpo` with `trl.%s: %s`", variant, _at(("rl",), where), note, key, value)
    if out.get("cosine_constant_lr_ratio") == 0:  # Axolotl reads 0 as unset: plain cosine to the floor
        log.info("`cosine_constant_lr_ratio: 0`%s (Axolotl): unset, as Axolotl reads it",
                 _at(("cosine_constant_lr_ratio",), where))
        del out["cosine_constant_lr_ratio"]
    if isinstance(out.get("pretraining_dataset"), str):  # Axolotl's first spelling: one path
        log.info("`pretraining_dataset: %s` (old Axolotl): a list of one entry", out["pretraining_dataset"])
        out["pretraining_dataset"] = [{"path": out["pretraining_dataset"]}]
    if isinstance(out.get("tokens"), dict):  # Axolotl's first spelling of `special_tokens`
        log.info("`tokens`%s (Axolotl's old mapping of special tokens): axo's `special_tokens`", _at(("tokens",), where))
        out["special_tokens"] = {**out.pop("tokens"), **(out.get("special_tokens") or {})}
    fsdp = out.get("fsdp_config") if isinstance(out.get("fsdp_config"), dict) else {}
    if out.get("gradient_checkpointing") and (fsdp.get("activation_checkpointing") or
                                              fsdp.get("fsdp_activation_checkpointing")):
        log.info("`gradient_checkpointing`%s: FSDP's `activation_checkpointing` recomputes the same activations; "
                 "axo uses that one", _at(("gradient_checkpointing",), where))
        del out["gradient_checkpointing"]
    if preset := deepspeed_preset(out.get("deepspeed")):
        log.info("`deepspeed: %s`%s (Axolotl's file): axo's preset %s", out["deepspeed"], _at(("deepspeed",), where),
                 preset)
        out["deepspeed"] = preset


def _apply_rules(node: dict, path: tuple, prefix: str, known, where: Where, problems: list[str]) -> dict:
    from axo.config.compat import TABLE

    out = {}
    for key, value in node.items():
        # FSDP1 spells fsdp_config's keys with an `fsdp_` prefix
        rows = (prefix + str(key), prefix + str(key).removeprefix("fsdp_"))
        rule = None if key in known else TABLE.get(rows[0]) or TABLE.get(rows[1])
        if rule is None or (key == "plugins" and not path):
            out[key] = value
            continue
        name, at = dotted(path + (key,)), _at(path + (key,), where)
        if rule.cls == "mapped":
            new = rule.convert(value) if rule.convert and not is_off(value) else {}
            if "__refused__" in new:
                problems.append(f"`{name}`{at}: {new['__refused__']}")
                continue
            for target, converted in new.items():
                mine = out.get(target, node.get(target))
                if isinstance(mine, dict) and isinstance(converted, dict):  # several keys build one mapping
                    converted = {**mine, **converted}
                elif mine is not None and mine != converted and not (mine is True and converted):
                    problems.append(f"`{name}`{at} means `{target}: {converted}`, but `{target}` is {mine!r}; "
                                    f"keep one")
                out[target] = converted
                where.setdefault(path + (target,), where.get(path + (key,), ""))
            log.info("`%s`%s (Axolotl): %s", name, at, rule.note)
        elif is_off(value):
            continue  # turns nothing on
        elif rule.cls == "speed":
            log.warning("`%s`%s is skipped: %s. What is learned does not change.", name, at, rule.note)
        else:
            problems.append(f"`{name}`{at}: {rule.note}")
    return out


def _check_plugins(plugins, where: Where) -> list[str]:
    """Axolotl's `plugins:` list: each path must be one axo knows; the plugins' keys are read like
    any other key (their rows in the compatibility table)."""
    from axo.config.compat import PLUGINS

    at = _at(("plugins",), where)
    problems = []
    for plugin in plugins if isinstance(plugins, list) else [plugins]:
        kind = PLUGINS.get(str(plugin))
        if kind is None:
            problems.append(f"`plugins`{at}: {plugin!r} is not a plugin axo knows; the ones it reads: "
                            + ", ".join(p.rsplit(".", 1)[-1] for p in PLUGINS))
        elif kind == "refused":
            problems.append(f"`plugins`{at}: {plugin.rsplit('.', 1)[-1]} is not in axo: it would change what is "
                            "learned (see its keys in the compatibility table)")
    return problems


def _line_number(problem: str) -> int:
    """Problems in the order of the file; those without a line (a missing key) first."""
    found = re.search(r"\(line (\d+)\)", problem)
    return int(found.group(1)) if found else 0


def _describe(path: tuple, message: str, where: Where) -> str:
    return f"`{dotted(path)}`{_at(path, where)}: {message}" if path else message


def _rename_aliases(raw: dict, where: Where, problems: list[str]) -> dict:
    """Axolotl's other spellings become axo's one, here and only here."""
    out = dict(raw)
    for old, new in ALIASES.items():
        if old in out:
            if new in out:
                problems.append(f"`{old}` and `{new}` are the same setting; keep only `{new}`")
            out[new] = out.pop(old)
            where[(new,)] = where.get((old,), "")
    chosen = {flag: out.pop(flag) for flag in list(out) if flag in ATTENTION_FLAGS}
    on = [flag for flag, value in chosen.items() if value]
    if len(on) > 1 or (on and out.get("attn_implementation") not in (None, ATTENTION_FLAGS[on[0]])):
        keys = on + (["attn_implementation"] if out.get("attn_implementation") else [])
        problems.append(f"{', '.join(f'`{k}`' for k in keys)} choose different attention backends; "
                        "keep only `attn_implementation`")
    elif on:
        out["attn_implementation"] = ATTENTION_FLAGS[on[0]]
        where[("attn_implementation",)] = where.get((on[0],), "")
    return out


def _check_dataset_entries(entries, list_key: str, where: Where, problems: list[str]):
    """Strip and report keys a dataset entry does not know, so pydantic only sees real ones."""
    if not isinstance(entries, list):
        return entries
    known = DatasetConfig.model_fields
    cleaned = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            cleaned.append(entry)
            continue
        keep = {}
        for key, value in rename_dataset_aliases(entry).items():
            if key in known:
                if value is not None:
                    keep[key] = value
            else:
                problems += _foreign_key((list_key, i, key), value, where, "dataset", known)
        cleaned.append(keep)
    return cleaned


def _foreign_key(path: tuple, value, where: Where, section: str, valid) -> list[str]:
    """A key axo does not take: Axolotl's but not supported yet, or unknown (with a suggestion)."""
    key = path[-1]
    name = dotted(path)
    at = _at(path, where)
    if key in axolotl_keys()[section]:
        if is_off(value):
            log.warning("`%s`%s is an Axolotl key axo does not support yet; its value %r "
                        "turns nothing on, so it is ignored", name, at, value)
            return []
        return [f"`{name}`{at}: Axolotl's `{key}` is not supported by axo yet; "
                f"remove it (or set it to null) to train without it"]
    close = difflib.get_close_matches(str(key), list(valid), n=1, cutoff=0.6)
    later = difflib.get_close_matches(str(key), axolotl_keys()[section], n=1, cutoff=0.6)
    if close:
        hint = f"; did you mean `{close[0]}`?"
    elif later:
        hint = f"; did you mean `{later[0]}` (an Axolotl key axo does not support yet)?"
    else:
        hint = "; see `axo config-schema` for valid keys"
    return [f"`{name}`{at}: unknown key{hint}"]


def _describe_all(err: ValidationError, raw: dict, where: Where) -> list[str]:
    """pydantic errors as sentences about the user's keys; the alternatives of a union
    (`bf16: auto | bool`) are merged into one sentence per key."""
    by_key: dict[tuple, list[str]] = {}
    for error in err.errors():
        path = _user_path(tuple(error["loc"]), raw)
        msg = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            msg = "required key is missing; add it to the config"
        elif error["type"] == "extra_forbidden":
            msg = _extra_key(path)
        by_key.setdefault(path, [])
        if msg not in by_key[path]:
            by_key[path].append(msg)
    out = []
    for path, msgs in by_key.items():
        text = " or ".join(msgs)
        if not path:
            out.append(text)  # a cross-field check: its message names the keys
        elif msgs[0].startswith("required key"):
            out.append(f"`{dotted(path)}`: {text}")
        else:
            value = _lookup(raw, path)
            got = "" if isinstance(value, (dict, list)) else f" (got {value!r})"  # a whole entry: too long
            out.append(f"`{dotted(path)}`{_at(path, where)}: {text}{got}")
    return out


def _extra_key(path: tuple) -> str:
    """A key inside a nested block (`trl:`, `special_tokens:`...) that the block does not take."""
    block = axolotl_keys().get(str(path[0]), frozenset()) if len(path) > 1 else frozenset()
    if path[-1] in block:
        return f"Axolotl's `{dotted(path)}` is not supported by axo yet; remove it to train without it"
    close = difflib.get_close_matches(str(path[-1]), sorted(block), n=1, cutoff=0.6)
    if close:
        return f"unknown key; did you mean `{close[0]}`?"
    return "unknown key; see `axo config-schema` for valid keys"


def _user_path(loc: tuple, raw: dict) -> tuple:
    """Cut pydantic's location down to the keys the user wrote (it appends union member names)."""
    for n in range(len(loc), 0, -1):
        if _lookup(raw, loc[:n], _MISSING) is not _MISSING or n == 1:
            return loc[:n]
    return loc


_MISSING = object()


def _lookup(raw, path: tuple, default=None):
    for part in path:
        try:
            raw = raw[part]
        except (KeyError, IndexError, TypeError):
            return default
    return raw


def _at(path: tuple, where: Where) -> str:
    return f" ({where[path]})" if where.get(path) else ""


def dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
