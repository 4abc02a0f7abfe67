"""How many of Axolotl's own example configs axo accepts, and what stops the others.

    python bench/axolotl_examples.py [--version 0.19.0] [--show KEY_REGEX]

Downloads Axolotl's source distribution from PyPI into a temporary folder (the configs are read
there, never copied into this repository), runs axo's config validation on every YAML file under
its examples/, and prints the count and the keys that block the rest, most common first. Base
models need not exist: validation reads no weights."""

import argparse
import collections
import logging
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path


def fetch(version: str, into: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", f"axolotl=={version}", "--no-deps", "--no-binary",
                    ":all:", "--no-build-isolation", "-q", "-d", str(into)], check=True)
    [archive] = into.glob("axolotl-*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return next(into.glob("axolotl-*/examples"))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--version", default="0.19.0")
    parser.add_argument("--show", help="print every problem matching this regex, with its file")
    args = parser.parse_args()
    from axo.config import load
    from axo.errors import ConfigError

    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        examples = fetch(args.version, Path(tmp))
        files = sorted(p for p in examples.rglob("*") if p.suffix in (".yml", ".yaml"))
        accepted, blockers = 0, collections.Counter()
        for f in files:
            try:
                load(f)
                accepted += 1
            except ConfigError as err:
                keys = set()
                for problem in err.problems:
                    if args.show and re.search(args.show, problem):
                        print(f"{f.relative_to(examples)}: {problem}")
                    key = re.match(r"`([^`]+)`", problem)
                    keys.add(re.sub(r"\[\d+\]", "[]", key.group(1)) if key else problem[:70])
                blockers.update(keys)
    print(f"axo accepts {accepted} of {len(files)} example configs of Axolotl {args.version}")
    print("configs blocked, by key (a config can be blocked by several):")
    for key, count in blockers.most_common():
        print(f"  {count:3d}  {key}")


if __name__ == "__main__":
    main()
