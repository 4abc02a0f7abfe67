"""Knowledge distillation end to end on tiny Llamas: a student (random, seed 0) learns a teacher (random,
seed 1, a different function), from the teacher's top-k log-probs stored in the rows (offline, in vLLM's
prompt_logprobs layout) or from the teacher run alongside (online). The student's KL to the teacher on
the trained tokens falls in both; GKD (TRL's trainer, on-policy) runs and lowers it too."""

import json

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer

from axo.data.formats import alpaca
from conftest import build_tiny_model, read_log_history

TOP_K = 8


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """Another random tiny Llama (seed 1, where the student has seed 0), with logits 4x as large: a
    random model's next-token distribution is nearly flat, and its top 8 of 373 tokens would hold
    a fifth of it; this one's hold most of it, as a trained teacher's do."""
    folder = tmp_path_factory.mktemp("teacher")
    build_tiny_model(folder, hidden=32)
    model = AutoModelForCausalLM.from_pretrained(folder)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():  # build_tiny_model seeds 0: re-draw the matrices
            if p.dim() == 2:
                p.normal_(0, 0.2)
        model.model.norm.weight.mul_(4)
    model.save_pretrained(folder)
    return folder


def teacher_rows(teacher, alpaca_file, path):
    """The alpaca rows with the teacher's top-k log-probs of every token, as vLLM's prompt_logprobs
    writes them: null for the first token, then {token_id: logprob}."""
    tok = AutoTokenizer.from_pretrained(teacher)
    model = AutoModelForCausalLM.from_pretrained(teacher)
    rows = [json.loads(line) for line in alpaca_file.read_text().splitlines()]
    with path.open("w") as out, torch.no_grad():
        for row in rows:
            text = alpaca.build_prompt(row["instruction"], row.get("input", "")) + row["output"]
            ids = tok(text + tok.eos_token, add_special_tokens=True)["input_ids"]
            logprobs = F.log_softmax(model(torch.tensor([ids])).logits[0], -1)
            values, indices = logprobs[:-1].topk(TOP_K, -1)
            row["logprobs"] = [None] + [{str(i): v for i, v in zip(ix.tolist(), vs.tolist())}
                                        for ix, vs in zip(indices, values)]
            out.write(json.dumps(row) + "\n")
    return path


def kl_to_teacher(student_dir, teacher_dir, alpaca_file) -> float:
    """Mean KL(teacher || student) over the answer tokens of the rows, full vocabulary."""
    tok = AutoTokenizer.from_pretrained(teacher_dir)
    student, teacher = (AutoModelForCausalLM.from_pretrained(d) for d in (student_dir, teacher_dir))
    total, count = 0.0, 0
    with torch.no_grad():
        for line in alpaca_file.read_text().splitlines()[:32]:
            row = json.loads(line)
            prompt = alpaca.build_prompt(row["instruction"], row.get("input", ""))
            ids = torch.tensor([tok(prompt + row["output"] + tok.eos_token)["input_ids"]])
            start = len(tok(prompt)["input_ids"]) - 1
            s, t = (F.log_softmax(m(ids).logits[0, start:-1], -1) for m in (student, teacher))
            total += F.kl_div(s, t, log_target=True, reduction="sum").item()
            count += s.shape[0]
    return total / count


def test_offline_kd_lowers_the_kl_to_the_teacher(make_config, teacher, alpaca_file, tiny_model, tmp_path):
    data = teacher_rows(teacher, alpaca_file, tmp_path / "with_logprobs.jsonl")
    cfg = make_config(kd_trainer=True, kd_temperature=1.0, max_steps=30,
                      datasets=[{"path": str(data), "type": "alpaca", "logprobs_field": "logprobs"}])
    from axo.train.recipes import run

    summary = run(cfg)
    assert summary["method"] == "kd"
    before, after = kl_to_teacher(tiny_model, teacher, alpaca_file), kl_to_teacher(cfg.train.output_dir, teacher,
                                                                                     alpaca_file)
    assert after < 0.5 * before, (before, after)


def test_online_kd_lowers_the_kl_to_the_teacher_and_packs(make_config, teacher, alpaca_file, tiny_model):
    cfg = make_config(kd_trainer=True, teacher_model=str(teacher), kd_online_topk=TOP_K, kd_ce_alpha=0.1,
                      sample_packing=True, max_steps=30)
    from axo.train.recipes import run

    run(cfg)
    losses = [e["loss"] for e in read_log_history(cfg.train.output_dir) if "loss" in e]
    assert losses[-1] < losses[0]
    before, after = kl_to_teacher(tiny_model, teacher, alpaca_file), kl_to_teacher(cfg.train.output_dir, teacher,
                                                                                     alpaca_file)
    assert after < 0.5 * before, (before, after)


def test_gkd_runs_and_lowers_the_kl_to_the_teacher(make_config, teacher, alpaca_file, tiny_model):
    """TRL's GKD on axo's rows: half the steps on the student's own sampled answers, graded by the
    teacher (generalized JSD, beta 0.5)."""
    cfg = make_config(rl="gkd", teacher_model=str(teacher), trl={"lmbda": 0.5, "max_completion_length": 8},
                      max_steps=30)
    from axo.train.recipes import run

    summary = run(cfg)
    assert summary["method"] == "gkd"
    before, after = kl_to_teacher(tiny_model, teacher, alpaca_file), kl_to_teacher(cfg.train.output_dir, teacher,
                                                                                     alpaca_file)
    assert after < 0.5 * before, (before, after)
