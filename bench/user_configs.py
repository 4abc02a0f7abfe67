"""How axo reads the Axolotl configs users wrote in their own repositories (not Axolotl's examples).

    python bench/user_configs.py CORPUS [CORPUS ...] [--show REGEX] [--train 40] [--typos 50] [--migrate]

CORPUS: folders of YAML files collected from public repositories (kept out of this repository:
third-party files are read, never committed; each folder's MANIFEST.tsv says where each file came
from). For every config it runs `axo validate` and prints how many are accepted, refused (with each
refusal's row of the key table) or end in a traceback (a bug). Then, on fixed samples:

--train N   N accepted configs (chosen by a seeded shuffle of the file names) train 2 steps, unchanged but
            for what this machine cannot have: the model (a tiny local Llama with the tokenizer the
            config's template needs), the data (rows of the shape each dataset entry reads, written
            here), and what only a GPU runs (bf16/fp16/tf32, DeepSpeed/FSDP: the keys are removed).
--typos N   N configs with a key that changes what is learned: that key renamed by one edit (insert,
            delete, swap of two neighbours) must be an error naming it and the right name.
--migrate   `axo migrate` on every config: the result must pass `axo validate --strict`.
--migrate-train N   N configs that migrate changes train 2 steps before and after: the same rows and loss.
"""

import argparse
import collections
import json
import os
import shutil
import logging
import random
import re
import sys
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))


def configs(folders: list[str]) -> list[Path]:
    files = []
    for folder in folders:
        files += sorted(p for p in Path(folder).rglob("*") if p.suffix in (".yml", ".yaml"))
    return files


# Refusals that Axolotl makes too (read from its code): a config with one of these problems does not run in
# Axolotl either, and is counted apart.
AXOLOTL_REFUSES = [
    (r"not valid YAML", "its YAML does not parse"),
    (r"required key is missing|no training data", "Axolotl requires it too"),
    (r"is a file format, which `ds_type` names|unknown dataset type|`alpaca` is not a row format of `rl: dpo`",
     "Axolotl has no such prompt strategy either (\"unhandled prompt tokenization strategy\")"),
    (r"set either `\w+` or `\w+`, not both", "Axolotl's validators refuse the pair too (since 2023-11/12)"),
    (r"Input should be (a valid|'adamw_torch')", "Axolotl's schema (pydantic) refuses the value's type too"),
    (r"model class '\w+' is not supported yet", "not a transformers class: Axolotl's getattr(transformers, ...) fails"),
]


def axolotl_refuses_too(problems: list[str]) -> bool:
    return any(re.search(pattern, p) for pattern, _ in AXOLOTL_REFUSES for p in problems)


def validate_all(files: list[Path], show: str | None) -> dict[Path, str]:
    """{file: "accepted" | "refused" | "traceback"}, with the blockers printed by key."""
    from axo.config import load
    from axo.errors import AxoError, ConfigError

    fate, blockers, examples, unread = {}, collections.Counter(), {}, collections.Counter()
    seen = Said()
    logging.getLogger("axo").addHandler(seen)
    for f in files:
        seen.lines.clear()
        try:
            load(f)
            fate[f] = "accepted"
        except ConfigError as err:
            fate[f] = "refused by Axolotl too" if axolotl_refuses_too(err.problems) else "refused"
            if fate[f] == "refused":
                print(f"REFUSED {f.name}: {' | '.join(p[:140] for p in err.problems[:3])}")
            keys = set()
            for problem in err.problems:
                if show and re.search(show, problem):
                    print(f"{f.name}: {problem}")
                key = re.match(r"`([^`]+)`", problem)
                name = re.sub(r"\[\d+\]", "[]", key.group(1)) if key else problem[:90]
                keys.add(name)
                examples.setdefault(name, problem)
            blockers.update(keys)
        except AxoError as err:
            fate[f] = "refused"
            blockers.update([str(err)[:90]])
        except Exception:
            fate[f] = "traceback"
            print(f"TRACEBACK {f}:\n{traceback.format_exc(limit=6)}")
        lines = [line for message in seen.lines if message.startswith("Read as Axolotl read them")
                 for line in message.splitlines()[1:]]
        unread.update({re.sub(r"\[\d+\]", "[]", found.group(1)) + (" (set twice)" if "set twice" in line else "")
                       for line in lines if (found := re.match(r"\s*- `([^`]+)`", line))})
    logging.getLogger("axo").removeHandler(seen)
    logging.getLogger("axo").addHandler(logging.NullHandler())  # (what later steps log is not the report)
    counts = collections.Counter(fate.values())
    runs_in_axolotl = len(files) - counts["refused by Axolotl too"]
    print(f"\n{len(files)} configs: {counts['accepted']} accepted ({counts['accepted'] / len(files):.0%}), "
          f"{counts['refused']} refused, {counts['refused by Axolotl too']} refused for what Axolotl refuses too, "
          f"{counts['traceback']} tracebacks")
    print(f"of the {runs_in_axolotl} that Axolotl accepts: {counts['accepted']} accepted "
          f"({counts['accepted'] / max(runs_in_axolotl, 1):.1%})")
    print("configs refused, by key (a config can be refused for several):")
    for key, count in blockers.most_common():
        print(f"  {count:3d}  {key}: {examples.get(key, '')[:160]}")
    print("in the warning block (keys no Axolotl release read, keys set twice), in how many configs:")
    print("  " + ", ".join(f"{k} {n}" for k, n in unread.most_common()))
    return fate


# ---- training a sample: only the model, the data and what only a GPU runs are swapped --------------------

LLAMA_MODULES = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head", "embed_tokens"}
GPU_ONLY = {"bf16": False, "fp16": False, "tf32": False, "bfloat16": None, "float16": None, "float32": None,
            "deepspeed": None, "fsdp": None, "fsdp_config": None, "fsdp_version": None, "gptq": None,
            "model_quantization_config": None, "model_quantization_config_kwargs": None,
            "use_ray": None, "ray_num_workers": None, "resources_per_worker": None}  # (Ray: workers with GPUs)
MODEL_KEYS = ("base_model_config", "tokenizer_config", "tokenizer_type", "model_revision", "revision_of_model",
              "tokenizer_use_fast", "tokenizer_legacy", "processor_type", "lora_model_dir",
              "tokenizer_use_mistral_common")  # (a Mistral tokenizer file, which the tiny model has not)
TEXT = ["Sort the digits: 3 1 2", "1 2 3", "You sort digits.", "Digits: 9 4 7", "4 7 9"]


def tiny_model(folder: Path) -> Path:
    """A 2-layer Llama (hidden 64: bitsandbytes cannot run a 4-bit 32x32 layer on a CPU) with the examples' byte-level tokenizer, ChatML's markers added and a
    ChatML template (configs that read `chat_template: tokenizer_default` find one)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from axo.data.templates import CHATML

    tokenizer = AutoTokenizer.from_pretrained(REPO / "examples" / "tiny-llama")
    tokenizer.add_tokens(["<|im_start|>", "<|im_end|>"], special_tokens=True)
    tokenizer.chat_template = CHATML
    config = AutoConfig.from_pretrained(REPO / "examples" / "tiny-llama")
    config.update({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
                   "num_key_value_heads": 2, "vocab_size": len(tokenizer), "max_position_embeddings": 32768})
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def rows_for(ds, method: str, n: int) -> list[dict] | None:
    """Rows of the shape a validated dataset entry reads (None: a shape not written here)."""
    from axo.config.data import alpaca_type
    from axo.data.formats.alpaca import KINDS, _fields
    from axo.data.preference import SIMPLE_SHAPES

    kind = ds.type_name
    out = []
    for i in range(n):
        q, a, system = f"{TEXT[0]} {i % 7}", f"{TEXT[1]} {i % 7}", TEXT[2]
        if kind == "alpaca":
            instruction, input_, answer, system_column = KINDS[alpaca_type(ds.type)[0]]
            row = {f: q for f in _fields(instruction)} | {f: a for f in _fields(answer)}
            row |= {input_: ""} if input_ else {}
            row |= {system_column: system} if system_column else {}
        elif kind == "user_defined":
            t = ds.type
            row = {t.field_instruction: q, t.field_input: "", t.field_output: a} | (
                {t.field_system: system} if t.field_system else {})
        elif kind == "completion":
            row = {ds.field or "text": f"{q} {a}"}
        elif kind == "input_output":
            row = {"segments": [{"text": q + "\n", "label": False}, {"text": a, "label": True}]}
        elif kind == "pretokenized":
            row = {"input_ids": [1, 20 + i % 50, 30, 40, 2], "labels": [-100, -100, 30, 40, 2]}
        elif kind in ("chat_template", "chat_template.default", "bradley_terry.chat_template") or kind == "kto":
            row = _chat_row(ds, q, a, system, kind, method)
        elif kind.split(".")[-1] in SIMPLE_SHAPES:
            sys_col, prompt, chosen, rejected = SIMPLE_SHAPES[kind.split(".")[-1]]
            answer = ({"chosen": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
                      if kind.endswith("ultra") else {})
            row = {sys_col: system, prompt: q, chosen: a, rejected: "3 2 1"} | (
                {chosen: answer["chosen"], rejected: [{"role": "user", "content": q},
                                                      {"role": "assistant", "content": "3 2 1"}]} if answer else {})
            if method == "kto":
                row = {"prompt": q, "completion": a, "label": i % 2 == 0}
        elif kind == "stepwise_supervised":
            row = {"prompt": q, "completions": ["1 2", "3"], "labels": [True, i % 2 == 0]}
        else:
            return None
        out.append(row)
    return out


def _chat_row(ds, q: str, a: str, system: str, kind: str, method: str) -> dict:
    mapping = ds.property_mappings
    roles = {role: (ds.roles or {}).get(role, [role])[0] for role in ("system", "user", "assistant")}

    def message(role, text):
        return {mapping.get("role", "role"): roles[role], mapping.get("content", "content"): text}

    turns = [message("user", q)]  # (no system turn: some families' templates refuse one)
    if method in ("dpo", "ipo", "orpo", "simpo", "reward") or kind != "chat_template":
        if kind == "kto":
            return {"prompt": q, "completion": a, "label": True}
        return {ds.field_messages: turns, ds.field_chosen: message("assistant", a),
                ds.field_rejected: message("assistant", "3 2 1")}
    if method in ("grpo", "rloo", "online_dpo", "ebft"):
        return {ds.field_messages: turns, "answer": a}
    return {ds.field_messages: turns + [message("assistant", a)]}


def swapped(path: Path, cfg, model: Path, work: Path) -> tuple[dict, list[str]] | None:
    """The config as written, with the model, the data and the GPU-only keys swapped, 2 steps long; and
    what was swapped. None when its data's shape is not written here."""
    import yaml

    raw = yaml.safe_load(path.read_text())
    what = ["model", "data"]
    raw["base_model"] = str(model)
    for key in MODEL_KEYS:
        raw.pop(key, None)
    if str(raw.get("model_type", "")).endswith(("ForCausalLM", "LMHeadModel")) or str(raw.get("model_type", "")).islower():
        raw["model_type"] = "AutoModelForCausalLM"
    targets = raw.get("lora_target_modules")
    if isinstance(targets, str):  # a regular expression over the other architecture's module names
        raw["lora_target_modules"], raw["lora_target_linear"] = None, True
        what.append("LoRA targets (names of the other architecture)")
    elif isinstance(targets, list) and not set(targets) <= LLAMA_MODULES:
        raw["lora_target_modules"] = [t for t in targets if t in LLAMA_MODULES] or None
        raw["lora_target_linear"] = raw["lora_target_linear"] or not raw["lora_target_modules"] \
            if "lora_target_linear" in raw else not raw["lora_target_modules"]
        what.append("LoRA targets (names of the other architecture)")
    for key, value in GPU_ONLY.items():
        if raw.get(key) not in (None, False, value):
            what.append(key)
            raw[key] = value
    for list_key in ("datasets", "test_datasets"):
        entries = getattr(cfg.data, list_key) or []
        if not isinstance(raw.get(list_key), list) or len(raw[list_key]) != len(entries):
            continue
        for i, (entry, ds) in enumerate(zip(raw[list_key], entries)):
            rows = rows_for(ds, cfg.method.name, 128)
            if rows is None:
                return None
            data = work / f"{list_key}-{i}.jsonl"
            data.write_text("".join(json.dumps(r) + "\n" for r in rows))
            for key in ("name", "split", "data_files", "revision", "ds_type", "shards", "shards_idx"):
                entry.pop(key, None)
            entry["path"] = str(data)
    if raw.get("pretraining_dataset"):
        data = work / "text.jsonl"
        data.write_text("".join(json.dumps({"text": " ".join(TEXT) * 3}) + "\n" for _ in range(64)))
        raw["pretraining_dataset"] = [{"path": str(data), "type": "pretrain"}]
    if raw.get("hub_model_id"):
        what.append("hub_model_id (no network here to push to)")
    raw.update(output_dir=str(work / "out"), dataset_prepared_path=str(work / "prepared"), max_steps=2,
               hub_model_id=None)
    return {k: v for k, v in raw.items() if v is not None}, what


KEEP = os.environ.get("AXO_BENCH_KEEP")  # a folder: keep each run's swapped config and data there, full errors


def train_two_steps(config: Path, work: Path) -> tuple[bool, str]:
    """`axo train` on a swapped config in a child process (a new session: Ray or DeepSpeed children die
    with it): (it finished and wrote run_summary.json, its output)."""
    import subprocess

    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "MLFLOW_TRACKING_URI": str(work / "ml"),
           "CUDA_VISIBLE_DEVICES": ""}
    child = subprocess.Popen([sys.executable, "-m", "axo.cli", "train", str(config)], cwd=work, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    try:
        output, _ = child.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, 9)
        output = "timed out after 600 s\n" + child.communicate()[0]
    return child.returncode == 0 and (work / "out" / "run_summary.json").exists(), output


def train_sample(accepted: list[Path], n: int) -> None:
    """Each of the first n accepted configs (a seeded shuffle) trains 2 steps in a child process."""
    import tempfile

    import yaml

    from axo.config import load

    results = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        model = tiny_model(Path(tmp) / "tiny")
        tried = 0
        for path in accepted:
            if tried == n:
                break
            work = Path(tmp) / f"run-{tried}"
            work.mkdir()
            made = swapped(path, load(path), model, work)
            if made is None:
                print(f"  (not tried: its data's shape is not written here) {path.name}")
                continue
            raw, what = made
            tried += 1
            (work / "config.yml").write_text(yaml.safe_dump(raw, sort_keys=False))
            ok, output = train_two_steps(work / "config.yml", work)
            results["trained" if ok else "failed"] += 1
            print(f"  {'trained' if ok else 'FAILED '} {path.name} (swapped: {', '.join(what)})")
            if not ok:
                print("    " + "\n    ".join(output.strip().splitlines()[-(40 if KEEP else 6):]))
            if KEEP:
                shutil.copytree(work, Path(KEEP) / work.name, dirs_exist_ok=True)
    print(f"\n{results['trained']} of {tried} sampled configs trained 2 steps "
          f"({results['trained'] / max(tried, 1):.0%})")


def migrated_trains_the_same(accepted: list[Path], n: int) -> None:
    """For n configs that `axo migrate` changes: the original and the migrated config, swapped alike, prepare
    the same rows and train 2 steps to the same loss."""
    import tempfile

    import datasets
    import yaml

    from axo.config import load
    from axo.config.migrate import migrate

    same, tried = 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        model = tiny_model(Path(tmp) / "tiny")
        for path in accepted:
            done = migrate(path)
            if tried == n or not done.changes:
                continue
            outcome = {}
            for name, source in (("original", path), ("migrated", Path(tmp) / f"{path.stem}.migrated.yml")):
                if name == "migrated":
                    source.write_text(done.text)
                work = Path(tmp) / f"{path.stem}-{name}"
                work.mkdir()
                made = swapped(source, load(source), model, work)
                if made is None:
                    break
                (work / "config.yml").write_text(yaml.safe_dump(made[0], sort_keys=False))
                ok, _ = train_two_steps(work / "config.yml", work)
                if not ok:
                    break
                prepared = next((work / "prepared").iterdir()) / "train"
                outcome[name] = (datasets.load_from_disk(str(prepared)).to_list(),
                                 json.loads((work / "out" / "run_summary.json").read_text())["train_loss"])
            if len(outcome) < 2:
                continue
            tried += 1
            equal = outcome["original"] == outcome["migrated"]
            same += equal
            print(f"  {'same' if equal else 'DIFFERENT'} rows and loss: {path.name} ({len(done.changes)} changes; "
                  f"loss {outcome['original'][1]:.6f})")
    print(f"\nmigrated configs: {same} of {tried} prepare the same rows and train to the same loss as the original")


# ---- typos of keys that change what is learned ------------------------------------------------------------

def one_edit(key: str, kind: int) -> str:
    """`key` with one edit in its middle: 0 a letter doubled (insert), 1 a letter dropped, 2 two swapped."""
    i = max(1, len(key) // 2)
    if kind == 0:
        return key[:i] + key[i] + key[i:]
    if kind == 1:
        return key[:i] + key[i + 1:]
    return key[:i - 1] + key[i] + key[i - 1] + key[i + 1:] if key[i] != key[i - 1] else key[:i] + key[i] + key[i:]


def typo_cases(raw: dict, n: int) -> list[tuple[str, str]]:
    """Up to n (key, typo) pairs for a config: its top-level keys that change what is learned, each with
    one edit (the kind cycling) that is not itself a key."""
    from axo.config.compat import TABLE, learned
    from axo.config.root import KEY_AREA

    out = []
    for key in sorted(k for k in raw if learned(k) and len(k) > 3):
        typo = one_edit(key, len(out) % 3)
        if typo != key and typo not in KEY_AREA and typo not in TABLE:
            out.append((key, typo))
        if len(out) == n:
            break
    return out


def typos(files: list[Path], n: int) -> None:
    """For n configs: each of up to three learned keys renamed by one edit must be an error naming the typo
    and the key."""
    from axo.config.loader import parse_yaml, validate
    from axo.errors import ConfigError

    tried, named, missed = 0, 0, []
    for path in files[:n]:
        raw, where, _ = parse_yaml(path.read_text())
        for key, typo in typo_cases(raw, 3):
            tried += 1
            changed = {(typo if k == key else k): v for k, v in raw.items()}
            try:
                validate(changed, source=path.name)
                missed.append(f"{path.name}: `{typo}` (for `{key}`) loaded")
            except ConfigError as err:
                if any(f"`{typo}`" in p and f"did you mean " in p and f"`{key}`" in p.split("?")[0] for p in err.problems):
                    named += 1
                else:
                    missed.append(f"{path.name}: `{typo}` (for `{key}`): {err.problems}")
    print(f"\ntypos: {named} of {tried} (in {min(n, len(files))} configs) were errors naming the typo and the key")
    for line in missed:
        print("  MISSED " + line[:300])


# ---- migrating every config ----------------------------------------------------------------------------------

def migrations(files: list[Path]) -> None:
    """`axo migrate` on each config: the result must load under `strict: true` into the same config."""
    import tempfile

    from axo.config import load
    from axo.config.migrate import migrate
    from axo.errors import AxoError

    ok, changed, failed = 0, 0, []
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            try:
                done = migrate(path)
                out = Path(tmp) / path.name
                out.write_text(done.text)
                strict = load(out, ["--strict"])
                assert strict.to_flat() == load(path).to_flat()
                ok += 1
                changed += bool(done.changes)
            except (AxoError, AssertionError) as err:
                failed.append(f"{path.name}: {str(err)[:300]}")
    print(f"\nmigrate: {ok} of {len(files)} accepted configs migrate to a config that `strict: true` accepts and "
          f"that loads into the same config ({changed} had something to change)")
    for line in failed:
        print("  FAILED " + line)


class Said(logging.Handler):
    """Keeps what axo logs while a config loads."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="+")
    parser.add_argument("--show", help="print every problem matching this regex, with its file")
    parser.add_argument("--train", type=int, default=0)
    parser.add_argument("--typos", type=int, default=0)
    parser.add_argument("--migrate", action="store_true")
    parser.add_argument("--migrate-train", type=int, default=0, help="that many migrated configs train as the original")
    parser.add_argument("--only", help="only the configs whose file name matches this regex")
    args = parser.parse_args()
    logging.getLogger("axo").propagate = False  # (kept by Said, not printed)
    files = [f for f in configs(args.corpus) if not args.only or re.search(args.only, f.name)]
    fate = validate_all(files, args.show)
    accepted = sorted((f for f, v in fate.items() if v == "accepted"), key=lambda f: f.name)
    random.Random(0).shuffle(accepted)
    if args.typos:
        typos(sorted(accepted, key=lambda f: f.name), args.typos)
    if args.migrate:
        migrations(sorted(accepted, key=lambda f: f.name))
    if args.train:
        train_sample(accepted, args.train)
    if args.migrate_train:
        migrated_trains_the_same(accepted, args.migrate_train)


if __name__ == "__main__":
    main()
