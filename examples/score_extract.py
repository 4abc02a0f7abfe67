"""Score the quickstart model on the held-out extraction rows, show two of its answers, and ask it a
few general questions it answered before fine-tuning (a model that forgot them collapsed).

    python examples/score_extract.py examples/quickstart.yml --label before     # the base model
    python examples/score_extract.py examples/quickstart.yml --label after      # output_dir's adapter
    python examples/score_extract.py examples/quickstart.yml --label gguf --gguf outputs/quickstart/gguf/model-q8_0.gguf

Two scores: "exact", the answer is the expected line character for character (the format the
fine-tune teaches), and "fields", the answer parses as JSON with the right name, age and city. Each
run writes its answers to output_dir/score-LABEL.json, so runs can be compared answer by answer.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

from axo.config import load
from axo.errors import AxoError
from axo.infer.generate import load_generator, load_gguf_generator
from axo.logs import setup_logging

# (question, a word the answer must contain): answered right by SmolLM2-135M-Instruct before fine-tuning.
GENERAL = [("What is the capital of France?", "paris"),
           ("What is the capital of Japan?", "tokyo"),
           ("Who wrote Romeo and Juliet?", "shakespeare"),
           ("Which ocean is the largest?", "pacific"),
           ("What language is spoken in Brazil?", "portuguese")]


def fields(answer: str) -> dict | None:
    try:
        parsed = json.loads(answer)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--label", required=True)
    parser.add_argument("--gguf", help="answer with llama.cpp from this exported GGUF")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--show", type=int, default=2)
    parser.add_argument("--compare", help="the label of an earlier run whose answers these should equal")
    args, overrides = parser.parse_known_args()  # the rest: config overrides, as axo's commands take them
    setup_logging(logging.WARNING)  # as axo's commands: no library chatter or loading bars

    cfg = load(args.config, overrides)
    gen = load_gguf_generator(cfg, args.gguf) if args.gguf else load_generator(cfg)
    rows = [json.loads(line) for line in open(cfg.data.test_datasets[0].path)][:args.limit]
    answers = []
    for row in rows:
        question, expected = row["messages"][0]["content"], row["messages"][1]["content"]
        answer = gen.answer(question, 40)
        answers.append({"text": question.rsplit("Text: ", 1)[-1], "expected": expected, "answer": answer,
                        "exact": answer == expected, "fields": fields(answer) == json.loads(expected)})
    general = [{"question": q, "answer": gen.answer(q, 48), "expect": word} for q, word in GENERAL]
    for g in general:
        g["right"] = g["expect"] in g["answer"].lower()

    n = len(answers)
    exact, right = sum(a["exact"] for a in answers), sum(a["fields"] for a in answers)
    print(f"held-out rows ({n}; their names, cities and two sentence shapes never appear in training):")
    print(f"  exact format  {exact}/{n} ({exact / n:.0%})    fields right (parsed JSON)  {right}/{n} ({right / n:.0%})")
    for a in answers[:args.show]:
        print(f"  {a['text']}\n    -> {a['answer']!r}{'' if a['exact'] else '   (expected ' + a['expected'] + ')'}")
    print(f"general questions (answered right before fine-tuning): {sum(g['right'] for g in general)}/{len(general)}")
    for g in general:
        print(f"  {g['question']}  -> {g['answer'][:90]!r}{'' if g['right'] else '   (WRONG: no ' + g['expect'] + ')'}")
    if args.compare:
        earlier = json.loads((Path(cfg.train.output_dir) / f"score-{args.compare}.json").read_text())["answers"]
        same = sum(a["answer"] == b["answer"] for a, b in zip(answers, earlier))
        print(f"the same answer as {args.compare!r}, character for character: {same}/{min(n, len(earlier))}")
    summary = {"label": args.label, "exact": exact / n, "fields": right / n, "rows": n,
               "general_right": sum(g["right"] for g in general), "answers": answers, "general": general}
    out = Path(cfg.train.output_dir) / f"score-{args.label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    try:
        main()
    except AxoError as err:
        sys.exit(f"error: {err}")
