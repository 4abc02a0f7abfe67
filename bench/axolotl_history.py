"""Which config keys each Axolotl version read, from Axolotl's git history: every release from 0.3.0 on
and main at the start of each month from 2023-06 (users installed from main between releases). Writes
src/axo/config/axolotl_history.tsv, which axo's key table reads (config/keys.py).

    python bench/axolotl_history.py /path/to/axolotl.git     # a clone or bare mirror of Axolotl

A version read a top-level key when its schema (pydantic, from 2024) has the field or its code reads
`cfg.<key>`, `cfg["<key>"]` or `cfg.get("<key>")` (before the schema, that was the only way a key took
effect: Axolotl kept every key of the YAML and ignored those its code never read). It read a key of a
`datasets:` entry when a dataset schema has the field or its code reads it from an entry. A dataset
`type` it accepted is a module of its prompt strategies (`type: module`, or `module.load_fn` for its
other `load_*` functions), or a name its data loader compares `type` with.

Only key names and version numbers are written: nothing of Axolotl's code is kept."""

import ast
import re
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src" / "axo" / "config" / "axolotl_history.tsv"
DICT_METHODS = {"get", "update", "keys", "items", "values", "pop", "setdefault", "copy", "to_dict", "model_dump",
                "dict", "__dict__", "__getitem__", "__setitem__", "json", "model_copy", "model_fields"}
ENTRY_NAMES = r"(?:d|ds|ds_cfg|dataset_cfg|config_dataset|dataset_config|ds_config|dataset_conf|d_cfg)"
READS_TOP = [re.compile(r"\bcfg\.([a-z_][a-z0-9_]*)\b(?!\s*\()"), re.compile(r"\bcfg\[\s*[\"']([a-z0-9_]+)[\"']\s*\]"),
             re.compile(r"\bcfg\.get\(\s*[\"']([a-z0-9_]+)[\"']")]
READS_ENTRY = [re.compile(rf"\b{ENTRY_NAMES}\.([a-z_][a-z0-9_]*)\b(?!\s*\()"),  # (not a method call)
               re.compile(rf"\b{ENTRY_NAMES}\[\s*[\"']([a-z0-9_]+)[\"']\s*\]"),
               re.compile(rf"\b{ENTRY_NAMES}\.get\(\s*[\"']([a-z0-9_]+)[\"']")]
TYPE_NAMED = [re.compile(r"\b(?:d|d_base_type|d_type|ds_type_name|config_dataset)\.?(?:type)?\s*==\s*[\"']([\w.:-]+)[\"']"),
              re.compile(r"^\s*[\"']([a-z_]+)[\"']:\s*_handle_\w+", re.M)]  # a data loader's table of handlers
RL_PACKAGES = ("dpo", "kto", "orpo", "bradley_terry")  # their types name module.function, any public function
# what the old code read from a row it also named `d` (a row, not a dataset entry)
ROW_COLUMNS = {"input_ids", "attention_mask", "labels", "features", "train"}
SCHEMA_DIRS = ("src/axolotl/utils/config/models/input/", "src/axolotl/utils/schemas/")
TOP_CLASS = "AxolotlInputConfig"
ENTRY_CLASS = re.compile(r"Dataset$")  # (UserDefined*Type: the keys of a `type:` mapping, not of the entry)


def git(repo: str, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={repo}", *args], capture_output=True, text=True, check=True).stdout


def snapshots(repo: str) -> list[tuple[str, str]]:
    """(name, commit), oldest first: each release tag from v0.3.0, and main at each month's start."""
    tags = [t for t in git(repo, "tag").split() if re.fullmatch(r"v\d+\.\d+\.\d+", t)]
    tags = sorted((t for t in tags if tuple(map(int, t[1:].split("."))) >= (0, 3, 0)),
                  key=lambda t: tuple(map(int, t[1:].split("."))))
    out = [(t[1:], git(repo, "rev-list", "-1", t).strip()) for t in tags]
    head_date = git(repo, "log", "-1", "--format=%cs", "HEAD").strip()
    year, month = 2023, 6
    while f"{year}-{month:02d}" <= head_date[:7]:
        commit = git(repo, "rev-list", "-1", "--first-parent", f"--before={year}-{month:02d}-01", "HEAD").strip()
        if commit:
            out.append((f"main@{year}-{month:02d}", commit))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    out.append(("main@" + head_date, git(repo, "rev-parse", "HEAD").strip()))
    return sorted(out, key=lambda nc: git(repo, "log", "-1", "--format=%ct", nc[1]).strip())


def keys_read(repo: str, commit: str) -> dict[str, set[str]]:
    """Once Axolotl had a schema (2024-02), a key outside it was dropped at load (pydantic's default):
    the schema, with the plugins' argument models, is what it read. Before, its code's reads."""
    files = [f for f in git(repo, "ls-tree", "-r", "--name-only", commit, "src/axolotl").split() if f.endswith(".py")]
    schema = [f for f in files if f.startswith(SCHEMA_DIRS) or (f.startswith("src/axolotl/integrations/")
                                                               and f.endswith("/args.py"))]
    top, entry, types = set(), set(), set()
    classes: dict[str, tuple[list[str], set[str]]] = {}  # name -> (bases, fields) of the schema's classes
    plugin_args: set[str] = set()
    for path in files:
        text = git(repo, "show", f"{commit}:{path}")
        if not schema:
            for pattern in READS_TOP:
                top.update(pattern.findall(text))
            if not path.endswith("/user_defined.py"):  # (its ds_cfg is the `type:` mapping, not the entry)
                for pattern in READS_ENTRY:
                    entry.update(pattern.findall(text))
        if path.endswith("/data.py") or "/data/" in path:
            for pattern in TYPE_NAMED:
                types.update(pattern.findall(text))
        if "/prompt_strategies/" in path:
            types.update(_strategies(path, text))
        if path in schema:
            found = _schema_classes(text)
            classes.update(found)
            if "/integrations/" in path:
                plugin_args |= {name for name in found if name.endswith("Args")}
    top |= _fields(classes, TOP_CLASS).union(*(_fields(classes, name) for name in plugin_args))
    for name in classes:
        if ENTRY_CLASS.search(name):
            entry |= _fields(classes, name)
    return {"top": top - DICT_METHODS, "dataset": (entry - DICT_METHODS) - ROW_COLUMNS, "type": types}


def _strategies(path: str, text: str) -> set[str]:
    """`type:` names a prompt-strategy module offers: the module (its `load`), module.load_x."""
    module = path.split("/prompt_strategies/", 1)[1].removesuffix(".py").replace("/", ".")
    module = module.removesuffix(".__init__")
    if module == "__init__" or module.startswith("_"):
        return set()
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return set()
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")}
    package, _, rest = module.partition(".")
    if package in RL_PACKAGES and rest:
        return {f"{rest}.{f}" for f in functions} | ({rest} if "default" in functions or "load" in functions else set())
    loads = {f for f in functions if f.startswith("load")}
    return ({module} if "load" in loads else set()) | {f"{module}.{f}" for f in loads if f != "load"}


def _schema_classes(text: str) -> dict[str, tuple[list[str], set[str]]]:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return {}
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            fields = set()
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    fields.add(item.target.id)
                    fields |= _aliases(item.value)
            out[node.name] = ([b.id for b in node.bases if isinstance(b, ast.Name)], fields)
    return out


def _aliases(value) -> set[str]:
    if isinstance(value, ast.Call):
        return {k.value.value for k in value.keywords
                if k.arg in ("alias", "validation_alias") and isinstance(k.value, ast.Constant)
                and isinstance(k.value.value, str)}
    return set()


def _fields(classes: dict, name: str, seen: set | None = None) -> set[str]:
    seen = seen if seen is not None else set()
    if name not in classes or name in seen:
        return set()
    seen.add(name)
    bases, fields = classes[name]
    return set(fields).union(*(_fields(classes, b, seen) for b in bases))


def main(repo: str) -> None:
    history: dict[tuple[str, str], list[str]] = {}
    names = []
    for name, commit in snapshots(repo):
        names.append(name)
        for where, keys in keys_read(repo, commit).items():
            for key in keys:
                history.setdefault((where, key), []).append(name)
        print(name, file=sys.stderr)
    latest = names[-1]
    lines = ["# Generated by bench/axolotl_history.py from Axolotl's git history: do not edit.",
             f"# {len(names)} versions, {names[0]} to {latest}: each release from 0.3.0 and main at each month's start.",
             "# where\tkey\tfirst version that read it\tlast version that read it\tread by the newest"]
    for (where, key), seen in sorted(history.items()):
        lines.append(f"{where}\t{key}\t{seen[0]}\t{seen[-1]}\t{'yes' if seen[-1] == latest else 'no'}")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"{len(history)} keys and types over {len(names)} versions -> {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
