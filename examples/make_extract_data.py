"""Generate the quickstart task: pull a person's name, age and city out of a sentence, as one line of
JSON with fixed keys. A format users ask fine-tuning for (structured output a program parses), and
one that can be scored exactly.

    python examples/make_extract_data.py   # writes examples/data/extract_{train,test}.jsonl

The held-out split uses names, cities and sentence shapes that never appear in training, so its
exact-match score measures whether the model learned the format, not the rows.
"""

import json
import random
from pathlib import Path

NAMES = ["Maria", "Jonas", "Aiko", "Pedro", "Fatima", "Liam", "Chloe", "Mateo", "Ingrid", "Kwame", "Sofia", "Ravi",
         "Elena", "Tomasz", "Amara", "Lucas", "Yara", "Hugo", "Mei", "Omar", "Nina", "Felix", "Zara", "Diego",
         "Astrid", "Kenji", "Leila", "Bruno", "Hana", "Victor", "Greta", "Samir", "Alma", "Noah", "Ines", "Arjun"]
CITIES = ["Lyon", "Porto", "Osaka", "Nairobi", "Toronto", "Krakow", "Bergen", "Seville", "Hanoi", "Lima", "Dublin",
          "Tunis", "Graz", "Austin", "Leeds", "Pune", "Cork", "Quito", "Riga", "Perth", "Turin", "Busan", "Accra",
          "Malmo", "Bilbao", "Lagos", "Ghent", "Denver", "Cusco", "Oslo"]
SHAPES = [
    "{name} is {age} years old and lives in {city}.",
    "Meet {name}, {age}, from {city}.",
    "{name} ({age}) moved to {city} last spring.",
    "At {age}, {name} runs a small bakery in {city}.",
    "Our new colleague {name} is {age} and works from {city}.",
    "{name}, who turned {age} this year, was born and raised in {city}.",
    "Since moving to {city}, {name} ({age}) has taken up cycling.",
    "The winner, {name} of {city}, is {age}.",
    "{city} resident {name}, aged {age}, spoke at the meeting.",
    "Having lived in {city} for years, {name} celebrated turning {age}.",
]
HELD_OUT_SHAPES = [
    "Last week {name}, a {age}-year-old from {city}, won the chess final.",
    "{name} from {city} is {age}.",
]
PROMPT = "Extract the person's name, age and city from the text as JSON with the keys name, age and city.\n\nText: "


def row(name: str, age: int, city: str, shape: str) -> dict:
    answer = json.dumps({"name": name, "age": age, "city": city})
    return {"messages": [{"role": "user", "content": PROMPT + shape.format(name=name, age=age, city=city)},
                         {"role": "assistant", "content": answer}]}


def main(out: Path = Path(__file__).parent / "data", n_train: int = 2000, n_test: int = 100) -> None:
    rng = random.Random(0)
    test_names, test_cities = NAMES[:6], CITIES[:5]
    train = [row(rng.choice(NAMES[6:]), rng.randint(18, 90), rng.choice(CITIES[5:]), rng.choice(SHAPES))
             for _ in range(n_train)]
    test = [row(rng.choice(test_names), rng.randint(18, 90), rng.choice(test_cities), rng.choice(SHAPES + HELD_OUT_SHAPES))
            for _ in range(n_test)]
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("test", test)):
        with open(out / f"extract_{name}.jsonl", "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    print(f"wrote {n_train} train and {n_test} held-out rows to {out}")


if __name__ == "__main__":
    main()
