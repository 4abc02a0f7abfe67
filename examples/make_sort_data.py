"""Generate the quickstart task: sort or reverse a short list of digits, in alpaca format.

    python examples/make_sort_data.py        # writes examples/data/sort_{train,test}.jsonl

The held-out split holds digit lists that never appear in training, so exact-match accuracy on
it measures whether the model learned the rule, not the rows.
"""

import json
import random
from pathlib import Path

TASKS = {
    "Sort the digits": sorted,
    "Reverse the digits": lambda digits: digits[::-1],
}


def make_rows(n: int, rng: random.Random, seen: set) -> list[dict]:
    rows = []
    while len(rows) < n:
        digits = [rng.randint(0, 9) for _ in range(rng.randint(3, 6))]
        task = rng.choice(list(TASKS))
        key = (task, tuple(digits))
        if key in seen:
            continue
        seen.add(key)
        answer = TASKS[task](digits)
        rows.append({
            "instruction": f"{task}: {' '.join(map(str, digits))}",
            "input": "",
            "output": " ".join(map(str, answer)),
        })
    return rows


def main(out: Path = Path(__file__).parent / "data", n_train: int = 6000, n_test: int = 200) -> None:
    rng = random.Random(0)
    seen: set = set()
    out.mkdir(parents=True, exist_ok=True)
    for name, n in (("test", n_test), ("train", n_train)):
        with open(out / f"sort_{name}.jsonl", "w") as f:
            for row in make_rows(n, rng, seen):
                f.write(json.dumps(row) + "\n")
    print(f"wrote {n_train} train and {n_test} held-out rows to {out}")


if __name__ == "__main__":
    main()
