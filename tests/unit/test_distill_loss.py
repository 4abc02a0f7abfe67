"""The distillation loss: equal to TRL's GKD divergences over the whole vocabulary, to a hand
computation on one batch through KDTrainer, and the teacher's log-probs read from each spelling."""

import math

import pytest
import torch
import torch.nn.functional as F
from trl.experimental.gkd import GKDTrainer

from axo.data.distill import KDRows, teacher_entries
from axo.data.formats.base import RowError
from axo.train.distill import Distillation, KDTrainer, divergence


@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_full_vocabulary_divergence_is_trls_generalized_jsd(beta, temperature):
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 11), torch.randn(6, 11)
    ids = torch.arange(11).expand(6, 11)
    ours = divergence(student, ids, F.log_softmax(teacher / temperature, -1), temperature, beta)
    trl = GKDTrainer.generalized_jsd_loss(student[None], teacher[None], beta=beta, temperature=temperature,
                                          reduction="none")
    torch.testing.assert_close(ours, trl[0].sum(-1))


def hand_kd(student_logits, teacher, labels, temperature, beta, normalize, alpha, ce_alpha):
    """The loss written out token by token: teacher[p] is a dict {token: score} for token p."""
    total, count = 0.0, 0
    for p in range(len(labels) - 1):
        if labels[p + 1] == -100:
            continue
        count += 1
        z = [v / temperature for v in student_logits[p]]
        log_z = math.log(sum(math.exp(v) for v in z))
        s = {t: z[t] - log_z for t in teacher[p + 1]}
        if normalize:
            norm = math.log(sum(math.exp(v) for v in s.values()))
            s = {t: v - norm for t, v in s.items()}
        scaled = {t: v / temperature for t, v in teacher[p + 1].items()}
        norm = math.log(sum(math.exp(v) for v in scaled.values()))
        q = {t: v - norm for t, v in scaled.items()}
        if beta == 0:
            kl = sum(math.exp(q[t]) * (q[t] - s[t]) for t in q)
        else:
            kl = sum(math.exp(s[t]) * (s[t] - q[t]) for t in q)
        ce = -(student_logits[p][labels[p + 1]] - math.log(sum(math.exp(v) for v in student_logits[p])))
        total += alpha * temperature ** 2 * kl + ce_alpha * ce
    return total / count


@pytest.mark.parametrize("beta,normalize", [(0.0, False), (1.0, True)])
def test_one_batch_loss_equals_a_hand_computation(tiny_model, tmp_path, beta, normalize):
    from transformers import AutoModelForCausalLM, TrainingArguments

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    d = Distillation(alpha=0.7, ce_alpha=0.3, temperature=2.0, beta=beta, normalize_topk=normalize)
    trainer = KDTrainer(model=model, args=TrainingArguments(str(tmp_path), report_to=[], use_cpu=True),
                        distillation=d)
    torch.manual_seed(0)
    ids = torch.randint(2, 300, (1, 7))
    labels = ids.clone()
    labels[0, :3] = -100  # a prompt of three tokens
    teacher = [{} for _ in range(7)]
    for p in range(3, 7):  # three candidates per trained token, one position with two
        teacher[p] = {int(t): float(v) for t, v in zip(torch.randint(2, 300, (3 if p != 5 else 2,)),
                                                        torch.randn(3))}
    tids = torch.zeros(1, 7, 3, dtype=torch.long)
    scores = torch.full((1, 7, 3), float("-inf"))
    for p, entry in enumerate(teacher):
        tids[0, p, :len(entry)] = torch.tensor(list(entry), dtype=torch.long)
        scores[0, p, :len(entry)] = torch.tensor(list(entry.values()))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels, "teacher_ids": tids,
             "teacher_scores": scores}
    loss = trainer.compute_loss(model, batch)
    with torch.no_grad():
        logits = model(ids).logits[0].tolist()
    expected = hand_kd(logits, teacher, labels[0].tolist(), 2.0, beta, normalize, 0.7, 0.3)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_every_spelling_of_the_teachers_log_probs_reads_the_same():
    vllm = [None, {"5": -0.1, "9": -2.5}, {"7": {"logprob": -0.3, "rank": 1}}]
    legacy = [[], [{"token": "token_id:5", "logprob": -0.1}, {"token": "token_id:9", "logprob": -2.5}],
              [{"token": "token_id:7", "logprob": -0.3}]]
    v2 = ([[], [-0.1, -2.5], [-0.3]], [[], [5, 9], [7]])
    expected = [{}, {5: -0.1, 9: -2.5}, {7: -0.3}]
    assert teacher_entries(vllm, None, "lp", 10) == expected
    assert teacher_entries(legacy, None, "lp", 10) == expected
    assert teacher_entries(v2[0], v2[1], "lp", 10) == expected
    with pytest.raises(RowError, match="outside the vocabulary"):
        teacher_entries(vllm, None, "lp", 8)
    with pytest.raises(RowError, match="entry 1"):
        teacher_entries([None, "oops"], None, "lp", 10)


def test_rows_keep_scores_renormalized_at_the_generation_temperature(make_config, tmp_path):
    """Entries cover the row's last tokens; scores are temperature x log-prob renormalized over the k."""
    from axo.data.chat import context, load_processing

    cfg = make_config(kd_trainer=True, datasets=[{"path": "x.jsonl", "type": "alpaca", "logprobs_field": "lp",
                                                  "temperature": 2.0}])
    text = load_processing(cfg)
    rows = KDRows(cfg, context(cfg, text.chat, "datasets", 0, text.tokenizer))
    item = {"input_ids": [1, 2, 3, 4], "labels": [-100, -100, 3, 4], "length": 4, "trained": 2}
    out = rows.with_teacher(item, [{3: math.log(0.3), 8: math.log(0.1)}, {4: math.log(0.5)}])
    assert out["teacher_ids"] == [[0, 0], [0, 0], [3, 8], [4, 0]]
    assert out["teacher_scores"][2] == pytest.approx([2 * math.log(0.75), 2 * math.log(0.25)])
    assert out["teacher_scores"][3] == [0.0, -math.inf] and out["teacher_scores"][0] == [-math.inf, -math.inf]
    with pytest.raises(RowError, match="5 entries but the row has 4 tokens"):
        rows.with_teacher(item, [{}] * 5)


def test_log_probs_shifted_by_one_token_are_refused(make_config):
    """vLLM's entries include the actual token: read one position off, they name the next token, and
    the row says so rather than training the student toward the wrong tokens."""
    from axo.data.chat import context, load_processing

    cfg = make_config(kd_trainer=True, datasets=[{"path": "x.jsonl", "type": "alpaca", "logprobs_field": "lp"}])
    text = load_processing(cfg)
    rows = KDRows(cfg, context(cfg, text.chat, "datasets", 0, text.tokenizer))
    ids = [5, 17, 9, 33, 41, 8, 12, 60]
    item = {"input_ids": ids, "labels": ids, "length": 8, "trained": 8}
    aligned = [{}] + [{t: -0.5, 99: -1.5} for t in ids[1:]]
    assert rows.with_teacher(item, aligned)["teacher_ids"][3] == [33, 99]
    with pytest.raises(RowError, match=r"shifted by one token: entry i holds the candidates of token i\+1"):
        rows.with_teacher(item, aligned[1:] + [{}])  # each entry one position early: Fix: prepend a null
    with pytest.raises(RowError, match=r"token i-1.*drop the first entry"):
        rows.with_teacher(item, [{}] + aligned[:-1])
