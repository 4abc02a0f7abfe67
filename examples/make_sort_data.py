"""Generate the digit task: sort or reverse a short list of digits, in alpaca format.

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
    write_preferences(out, rng, n_pairs=1000)
    print(f"wrote {n_train} train and {n_test} held-out rows, and preference rows, to {out}")


def write_preferences(out: Path, rng: random.Random, n_pairs: int) -> None:
    """Pairs for the preference examples: the chosen answer is right, the rejected one reversed
    (wrong unless palindromic), as chat rows; and the same answers as KTO rows."""
    rows = [r for r in make_rows(2 * n_pairs, rng, set()) if r["output"] != r["output"][::-1]][:n_pairs]
    with open(out / "sort_pairs.jsonl", "w") as pairs, open(out / "sort_kto.jsonl", "w") as kto:
        for r in rows:
            wrong = " ".join(reversed(r["output"].split()))
            pairs.write(json.dumps({"messages": [{"role": "user", "content": r["instruction"]}],
                                    "chosen": r["output"], "rejected": wrong}) + "\n")
            for answer, label in ((r["output"], True), (wrong, False)):
                kto.write(json.dumps({"prompt": r["instruction"], "completion": answer, "label": label}) + "\n")
    with open(out / "sort_steps.jsonl", "w") as steps:  # process reward rows: is each step right?
        for i, r in enumerate(rows):
            answer = r["output"] if i % 2 == 0 else " ".join(reversed(r["output"].split()))
            steps.write(json.dumps({"prompt": r["instruction"], "completions": ["I sort them.", answer],
                                    "labels": [True, i % 2 == 0]}) + "\n")


if __name__ == "__main__":
    main()
