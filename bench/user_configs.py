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
"""

import argparse
import collections
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


def validate_all(files: list[Path], show: str | None) -> dict[Path, str]:
    """{file: "accepted" | "refused" | "traceback"}, with the blockers printed by key."""
    from axo.config import load
    from axo.errors import AxoError, ConfigError

    fate, blockers, examples = {}, collections.Counter(), {}
    for f in files:
        try:
            load(f)
            fate[f] = "accepted"
        except ConfigError as err:
            fate[f] = "refused"
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
    counts = collections.Counter(fate.values())
    print(f"\n{len(files)} configs: {counts['accepted']} accepted ({counts['accepted'] / len(files):.0%}), "
          f"{counts['refused']} refused, {counts['traceback']} tracebacks")
    print("configs refused, by key (a config can be refused for several):")
    for key, count in blockers.most_common():
        print(f"  {count:3d}  {key}: {examples.get(key, '')[:160]}")
    return fate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus", nargs="+")
    parser.add_argument("--show", help="print every problem matching this regex, with its file")
    parser.add_argument("--train", type=int, default=0)
    parser.add_argument("--typos", type=int, default=0)
    parser.add_argument("--migrate", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    files = configs(args.corpus)
    fate = validate_all(files, args.show)
    random.Random(0).shuffle(accepted := sorted(f for f, v in fate.items() if v == "accepted"))
    del accepted


if __name__ == "__main__":
    main()
