"""Store a teacher's top-k log-probs of every token next to the tiny run's rows, for offline
distillation (examples/kd.yml with `logprobs_field: logprobs`):

    python examples/teacher_logprobs.py [TEACHER] [K]     # default: outputs/tiny, 16

writes examples/data/sort_train_logprobs.jsonl in the layout vLLM's `prompt_logprobs` returns: per
token a {token_id: logprob} map of the teacher's k likeliest tokens at that position, null for the
first. A row is tokenized as axo tokenizes it for training (the tiny run's prompt, the answer, EOS),
so the lists line up with the rows' tokens. vLLM gives the same for a large teacher:
`SamplingParams(max_tokens=1, prompt_logprobs=k)` on the same text.
"""

import json
import sys
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

DATA = Path(__file__).parent / "data"


def main(teacher: str = "outputs/tiny", k: int = 16, batch: int = 64) -> None:
    tokenizer = AutoTokenizer.from_pretrained(teacher)
    model = AutoModelForCausalLM.from_pretrained(teacher).eval()
    rows = [json.loads(line) for line in (DATA / "sort_train.jsonl").read_text().splitlines()]
    out = DATA / "sort_train_logprobs.jsonl"
    with out.open("w") as f, torch.no_grad():
        for start in range(0, len(rows), batch):
            part = rows[start:start + batch]
            texts = [row["instruction"] + "\n" + row["output"] + tokenizer.eos_token for row in part]
            for row, ids in zip(part, tokenizer(texts)["input_ids"]):
                logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1].float(), -1)
                values, indices = logprobs.topk(k, -1)  # position p: the distribution of token p + 1
                row["logprobs"] = [None] + [dict(zip(map(str, i.tolist()), v.tolist()))
                                            for i, v in zip(indices, values)]
                f.write(json.dumps(row) + "\n")
    print(f"wrote {out}: {len(rows)} rows with the top {k} log-probs of {teacher} per token")


if __name__ == "__main__":
    main(*(sys.argv[1:2] or []), *(int(a) for a in sys.argv[2:3]))
