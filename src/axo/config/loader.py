"""YAML + command-line overrides -> validated `Config`, with every problem reported at once,
each naming the key, its YAML line, the bad value and the fix."""

import difflib
import logging
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from axo.config.axolotl import ALIASES, ATTENTION_FLAGS, axolotl_keys, is_off, rename_dataset_aliases
from axo.config.base import Skipped
from axo.config.data import DatasetConfig, alpaca_type
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
        raw, where, repeated = parse_yaml(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError([f"not valid YAML: {err}"], source=str(path)) from None
    if not isinstance(raw, dict):
        raise ConfigError(["the file must be a mapping of `key: value` lines"], source=str(path))
    apply_overrides(raw, where, list(overrides), str(path))
    from axo.config.user_code import make_importable

    make_importable(path.parent)  # reward functions and transforms next to the config are checked in validate
    return validate(raw, where, source=str(path), reading=Reading(repeated=repeated))


def parse_yaml(text: str) -> tuple[Any, Where, list[tuple[tuple, str]]]:
    """Load YAML; remember the line of every mapping key, by its path; and say which keys are set twice
    with different values (YAML, and so Axolotl, keep the second; the same value twice changes nothing)."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is None:
        return {}, {}, []
    where: Where = {}
    repeated: list[tuple[tuple, str]] = []
    _record_lines(node, (), where, repeated, {})
    return yaml.safe_load(text), where, repeated


def _record_lines(node, path: tuple, where: Where, repeated: list, values: dict) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key_path = path + (key_node.value,)
            line = f"line {key_node.start_mark.line + 1}"
            value = value_node.value if isinstance(value_node, yaml.ScalarNode) else yaml.serialize(value_node)
            if key_path in where and values[key_path] != value:
                first, second = (_short(v) for v in (values[key_path], value))
                repeated.append((key_path, f"`{dotted(key_path)}` ({where[key_path]}, again {line}): set twice, to "
                                 f"{first} then {second}; {second} is used, as YAML (and so Axolotl) reads it. Fix: "
                                 "keep one"))
            where[key_path], values[key_path] = line, value
            _record_lines(value_node, key_path, where, repeated, values)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_lines(item, path + (i,), where, repeated, values)


def _short(text: str) -> str:
    text = " ".join(text.removesuffix("...\n").split())
    if not text:
        return "nothing (null)"
    return f"`{text}`" if len(text) <= 40 else f"`{text[:37]}...`"


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


@dataclass
class Reading:
    """What the loader read as Axolotl did, beyond the config areas: keys no release read (dropped) and keys
    set twice (the second kept), both said in one warning block (errors with `strict: true`, as
    UNREAD_RULE says), and the old names it read as their successors. `axo migrate` writes them out."""

    unread: list[tuple[tuple, str]] = field(default_factory=list)  # (path, what is said)
    repeated: list[tuple[tuple, str]] = field(default_factory=list)
    renamed: list[tuple[tuple, str, str]] = field(default_factory=list)  # (path, the new name, why)

    def said(self) -> list[str]:
        return [message for _, message in self.repeated + self.unread]


def validate(raw: dict, where: Where | None = None, source: str = "config", reading: Reading | None = None) -> Config:
    """`reading` collects what was read as Axolotl did (config files bring the keys they set twice)."""
    where = where or {}
    problems: list[str] = []
    reading = reading if reading is not None else Reading()
    strict = raw.get("strict") is True
    raw = apply_compat(raw, where, problems, reading)
    raw = _rename_aliases(raw, where, problems)
    routed: dict[str, dict] = {area: {} for area in AREAS}
    for key, value in raw.items():
        if key in KEY_AREA:
            if value is not None:  # Axolotl writes `key:` (null) to mean "default"
                routed[KEY_AREA[key]][key] = value
        else:
            problems += _foreign_key((key,), value, where, "top", KEY_AREA, reading)
    for list_key in DATASET_LISTS:
        routed["data"][list_key] = _check_dataset_entries(raw.get(list_key), list_key, where, problems, reading)
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
    if strict:
        problems += reading.said()
    elif reading.said() and not problems:
        log.warning("Read as Axolotl read them (`strict: true` or --strict makes each an error):\n  - %s",
                    "\n  - ".join(sorted(reading.said(), key=_line_number)))
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


def apply_compat(raw: dict, where: Where, problems: list[str], reading: Reading) -> dict:
    """Axolotl's keys that axo maps, skips (speed only) or refuses, as config/compat.py's table says,
    settled before validation: a mapped key becomes the axo keys it means. Keys of a block that neither
    axo nor Axolotl has follow UNREAD_RULE, as top-level ones do."""
    raw = _half_weights(raw, where)
    out = _apply_rules(raw, (), "", KEY_AREA, where, problems, reading)
    _apply_values(out, where, problems)
    _as_axolotl_read(out, where)
    for block, model in _nested_models().items():
        if isinstance(out.get(block), dict):
            fields = set(model.model_fields) | {f"fsdp_{k}" for k in model.model_fields}
            out[block] = _apply_rules(out[block], (block,), f"{block}.", fields, where, problems, reading)
            out[block] = _unknown_in_block(out[block], (block,), fields, where, problems, reading)
    from axo.config.data import PretrainingDatasetConfig
    from axo.config.model import SpecialTokens

    if isinstance(out.get("special_tokens"), dict):
        out["special_tokens"] = _unknown_in_block(out["special_tokens"], ("special_tokens",),
                                                  set(SpecialTokens.model_fields), where, problems, reading)
    if isinstance(out.get("pretraining_dataset"), list):
        out["pretraining_dataset"] = [
            _unknown_in_block(e, ("pretraining_dataset", i), set(PretrainingDatasetConfig.model_fields), where,
                              problems, reading) if isinstance(e, dict) else e
            for i, e in enumerate(out["pretraining_dataset"])]
    for list_key in DATASET_LISTS:
        if isinstance(out.get(list_key), list):
            out[list_key] = [_apply_rules(_modern_entry(e, (list_key, i), where), (list_key, i), "datasets.",
                                          DatasetConfig.model_fields, where, problems, reading)
                             if isinstance(e, dict) else e for i, e in enumerate(out[list_key])]

    if out.get("plugins"):
        problems += _check_plugins(out.pop("plugins"), where)
    return out


def _unknown_in_block(node: dict, path: tuple, fields: set, where: Where, problems: list[str],
                      reading: Reading) -> dict:
    """A block's keys that neither axo nor Axolotl has, as UNREAD_RULE says: a typo of one that changes what
    is learned is an error, any other is read as unread and dropped (Axolotl's own keys that axo lacks
    stay, for the block's validation to name)."""
    from axo.config.compat import learned

    block = str(path[0])
    axolotl = axolotl_keys().get(block, frozenset()) | axolotl_keys().get("dataset" if block == "pretraining_dataset"
                                                                          else block, frozenset())
    learned_here = {k for k in fields if learned(f"{block}.{k}")}
    out = {}
    for key, value in node.items():
        if key in fields or key in axolotl or value is None:
            out[key] = value
            continue
        name, at = dotted(path + (key,)), _at(path + (key,), where)
        typos = one_edit_from(str(key), learned_here)
        if typos:
            problems.append(f"`{name}`{at}: {_did_you_mean(typos)}")
            continue
        close = difflib.get_close_matches(str(key), sorted(fields), n=1, cutoff=0.6)
        reading.unread.append((path + (key,), f"`{name}`{at}: no Axolotl release read this key here"
                               + (f"; the closest key is `{close[0]}`" if close else "")))
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


def _as_axolotl_read(out: dict, where: Where) -> None:
    """Values and combinations Axolotl accepted, done as Axolotl did them, each said in one line; what it
    read as "off" becomes unset. (Those that would train something other than asked stay refused, by the
    checks of the config areas.)"""
    def note(key: tuple, text: str, drop: bool = True) -> None:
        log.info("`%s`%s (as Axolotl read it): %s", dotted(key), _at(key, where), text)
        if drop:
            node = out
            for part in key[:-1]:
                node = node[part]
            node.pop(key[-1], None)

    has_eval = bool(out.get("val_set_size") or out.get("test_datasets"))
    if out.get("pretraining_dataset") and out.get("val_set_size") and not out.get("test_datasets"):
        note(("val_set_size",), "a streamed `pretraining_dataset` has no split to hold out, so nothing was held "
             "out; evaluation rows come from `test_datasets`")
        has_eval = False
    for key in ("eval_steps", "evals_per_epoch", "eval_table_size", "eval_max_new_tokens"):
        if out.get(key) not in (None, 0) and not has_eval:
            note((key,), "there is nothing to evaluate on (no `val_set_size` or `test_datasets`), so no evaluation "
                 "ran; none runs here either")
    if out.get("eval_table_size") and not out.get("do_causal_lm_eval"):
        note(("eval_table_size",), "Axolotl logged a W&B table of that many generated answers at each eval; axo "
             "writes them (and scores them) with `do_causal_lm_eval: true`, off here")
    for key in ("neftune_noise_alpha", "eval_max_new_tokens"):
        if out.get(key) == 0:
            note((key,), "0 turns it off")
    if out.get("group_by_length") and (out.get("sample_packing") or out.get("rl")):
        note(("group_by_length",), "packing (and the trainers of preference and RL methods) build their own "
             "batches, so the length-grouped sampler was never used")
    if out.get("max_steps") == -1:
        note(("max_steps",), "-1 means unset, as in transformers")
    if out.get("max_steps") and isinstance(out.get("num_epochs"), (int, float)) and out["num_epochs"] <= 0:
        note(("num_epochs",), f"{out['num_epochs']}: `max_steps` decides the length of the run")
    if out.get("resume_from_checkpoint") is False:
        note(("resume_from_checkpoint",), "false: no checkpoint to resume from")
    if out.get("resume_from_checkpoint") is True:
        note(("resume_from_checkpoint",), "true resumed from the newest checkpoint in `output_dir`: "
             "`auto_resume_from_checkpoints: true`")
        out["auto_resume_from_checkpoints"] = True
    if out.get("gradient_checkpointing") == "unsloth":
        note(("gradient_checkpointing",), "Unsloth's checkpointing keeps the saved activations in CPU memory: "
             "`gradient_checkpointing: offload`", drop=False)
        out["gradient_checkpointing"] = "offload"
    if out.get("load_in_4bit") is True and out.get("adapter") == "lora":
        note(("adapter",), "LoRA on a base loaded in 4-bit (`load_in_4bit: true`) is QLoRA: `adapter: qlora` "
             "(Axolotl up to 0.4 trained exactly that; later ones loaded the base unquantized)", drop=False)
        out["adapter"] = "qlora"
    chosen = out.get("attn_implementation")
    if out.get("flash_attention") and isinstance(chosen, str) and "flash" in chosen.lower():
        note(("flash_attention",), f"`attn_implementation: {chosen}` is the flash-attention kernel to run")
    kind = out.get("model_type")
    if isinstance(kind, str) and kind.islower() and kind.replace("_", "").isalnum():
        note(("model_type",), f"`{kind}` is an architecture, which the model's config names; the class to load is "
             "`AutoModelForCausalLM`", drop=False)
        out["model_type"] = "AutoModelForCausalLM"
    targets, saved = out.get("lora_target_modules"), out.get("lora_modules_to_save")
    if isinstance(targets, list) and isinstance(saved, list) and set(targets) & set(saved):
        both = [t for t in targets if t in saved]
        note(("lora_target_modules",), f"{', '.join(both)} also train in full (`lora_modules_to_save`), so LoRA on "
             "them adds nothing (peft now refuses both): they train in full only", drop=False)
        out["lora_target_modules"] = [t for t in targets if t not in saved] or None
    watch, upload = out.get("wandb_watch"), out.get("wandb_log_model")
    if watch == "":
        note(("wandb_watch",), "empty: W&B watches nothing")
    if isinstance(upload, str) and upload not in ("checkpoint", "end", "false"):
        note(("wandb_log_model",), f"{upload!r} is not checkpoint, end or false; transformers reads it as false, "
             "so no model was uploaded")
    _entries_as_axolotl_read(out, note)


def _entries_as_axolotl_read(out: dict, note) -> None:
    """The dataset entries' part of _as_axolotl_read (`note` says and drops, as there)."""
    for i, entry in enumerate(_entries(out.get("pretraining_dataset"))):
        if isinstance(entry, dict) and entry.get("type") == "completion":
            note(("pretraining_dataset", i, "type"), "raw text, which a pretraining entry always is", drop=False)
            entry["type"] = "pretrain"
    for list_key in DATASET_LISTS:
        for i, entry in enumerate(_entries(out.get(list_key))):
            if not isinstance(entry, dict):
                continue
            kind = entry.get("type")
            if entry.get("field") and kind not in (None, "completion") and not isinstance(kind, dict):
                note((list_key, i, "field"), f"read only by `type: completion`, so `type: {kind}` never read it")
            template = entry.get("chat_template")
            if isinstance(template, str) and ("{%" in template or "{{" in template) and not entry.get(
                    "chat_template_jinja"):
                note((list_key, i, "chat_template"), "a Jinja template itself: `chat_template: jinja` with "
                     "`chat_template_jinja` holding it", drop=False)
                entry.update(chat_template="jinja", chat_template_jinja=template)
            if isinstance(kind, str) and alpaca_type(kind):
                for key in ("field_messages", "message_property_mappings"):  # (where chat rows keep their turns;
                    if key in entry:  # which turns train, `roles_to_train`, is no such key: it stays an error)
                        note((list_key, i, key), f"read only by chat rows, so `type: {kind}` never read it")


def _half_weights(raw: dict, where: Where) -> dict:
    """Old Axolotl's `float16: true` / `bfloat16: true` loaded half-precision weights, so configs beside them
    turned autocast off (`fp16: false`): that pair means the half-precision run axo's `fp16` / `bf16` is."""
    out = dict(raw)
    for old, new in (("float16", "fp16"), ("bfloat16", "bf16")):
        if out.get(old) is True and out.get(new) is False:
            log.info("`%s: false`%s beside `%s: true` (old Axolotl): no autocast over half-precision weights; axo's "
                     "`%s` is that run, over fp32 master weights", new, _at((new,), where), old, new)
            del out[new]
    return out


def _entries(value) -> list:
    return value if isinstance(value, list) else []


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


def _apply_rules(node: dict, path: tuple, prefix: str, known, where: Where, problems: list[str],
                 reading: Reading) -> dict:
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
            if rule.renamed and not is_off(value):
                reading.renamed.append((path + (key,), rule.renamed, rule.note))
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
    found = re.search(r"\(line (\d+)", problem)
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


def _check_dataset_entries(entries, list_key: str, where: Where, problems: list[str], reading: Reading):
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
                problems += _foreign_key((list_key, i, key), value, where, "dataset", known, reading)
        cleaned.append(keep)
    return cleaned


# The rule for a key axo does not know, in two sentences (the README shows them; a test keeps the two equal).
UNREAD_RULE = ("A key that no Axolotl release read is an error when it is one edit (a letter added, dropped, "
               "changed or two swapped) away from a key that changes what is learned, since that is a typo that "
               "would train something else: `lora_rr`, `learning_rat`. Any other such key (`model_card`, "
               "`hub_repo`) is listed in one warning at start, with what it is or the key it is closest to, and "
               "ignored as Axolotl ignored it; `strict: true` or `--strict` makes each of them an error.")


def _foreign_key(path: tuple, value, where: Where, section: str, valid, reading: Reading) -> list[str]:
    """A key axo does not take: Axolotl's but not supported yet, a typo of a key that changes what is
    learned (an error), or a key no Axolotl release read (read as unread), as UNREAD_RULE says."""
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
    typos = one_edit_from(str(key), learned_keys(section))
    if typos:
        return [f"`{name}`{at}: {_did_you_mean(typos)}"]
    from axo.config.compat import UNREAD_NOTES

    close = difflib.get_close_matches(str(key), sorted(valid) + sorted(axolotl_keys()[section]), n=1, cutoff=0.6)
    said = UNREAD_NOTES.get(("datasets." if section == "dataset" else "") + str(key))
    reading.unread.append((path, f"`{name}`{at}: " + (said or "no Axolotl release read this key"
                                                    + (f"; the closest key is `{close[0]}`" if close else ""))))
    return []


@cache
def learned_keys(section: str) -> frozenset[str]:
    """The keys of a section (top, dataset) that decide what is learned: axo's, and Axolotl's in the table."""
    from axo.config.compat import TABLE, learned

    if section == "dataset":
        names = set(DatasetConfig.model_fields) | {k.split(".", 1)[1] for k in TABLE if k.startswith("datasets.")}
        return frozenset(k for k in names if learned(f"datasets.{k}"))
    names = set(KEY_AREA) | set(ALIASES) | {k for k in TABLE if "." not in k}
    return frozenset(k for k in names if learned(k))


def one_edit_from(key: str, names) -> list[str]:
    """The names `key` is one edit away from (a letter added or dropped, two neighbours swapped, a letter
    changed, in that order of likelihood; case and `-` for `_` count as no edit)."""
    spelled = key.lower().replace("-", "_")
    found = [(_edit_kind(spelled, name), name) for name in names]
    return [name for kind, name in sorted(f for f in found if f[0] is not None)]


def _edit_kind(a: str, b: str) -> int | None:
    """0 same, 1 a letter added or dropped, 2 two neighbours swapped, 3 a letter changed; None: further."""
    if a == b:
        return 0
    if abs(len(a) - len(b)) == 1:
        short, long = (a, b) if len(a) < len(b) else (b, a)
        i = next((i for i in range(len(short)) if short[i] != long[i]), len(short))
        return 1 if short[i:] == long[i + 1:] else None
    if len(a) != len(b):
        return None
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    if len(diff) == 1:
        return 3
    if len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]:
        return 2
    return None


def _did_you_mean(typos: list[str]) -> str:
    names = " or ".join(f"`{t}`" for t in typos[:3])
    which = "each changes" if len(typos) > 1 else f"`{typos[0]}` changes"
    return f"unknown key; did you mean {names}? ({which} what is learned, and no Axolotl release read this spelling)"


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
