"""`rl: ebft` (structured): the feature-matching reward's terms on vectors whose answers are known,
features read from the starting model (the base under the adapter, or a frozen copy), and a LoRA
run on the CPU through Axolotl's `ebft_opencode.transform` rows that logs both terms."""

import json
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from axo.config.rl import EBFTOptions
from axo.train.ebft import FeatureMatching, group_rewards, pool
from conftest import EXAMPLES, read_log_history

PROMPTS = [[{"role": "user", "content": "Sort the digits: 3 1 2"}]] * 2 + [[{"role": "user", "content": "Sort: 9 4"}]] * 2
ANSWERS = ["1 2 3", "3 2 1", "4 9", "9 9 9"]
TRUTH = ["1 2 3", "1 2 3", "4 9", "4 9"]


def test_alignment_and_diversity_of_known_vectors():
    sampled, reference = torch.tensor([[2.0, 0.0], [0.0, 3.0]]), torch.tensor([5.0, 0.0])
    alignment, diversity = group_rewards(sampled, reference, whiten=False)
    assert alignment.tolist() == [2.0, 0.0] and diversity.tolist() == [0.0, 0.0]
    alignment, diversity = group_rewards(torch.tensor([[1.0, 1.0]] * 3), reference, whiten=False)
    assert torch.allclose(diversity, torch.full((3,), 2.0))  # identical answers: the largest penalty
    assert torch.allclose(alignment, torch.full((3,), 2 ** 0.5))
    # whitening by the answers' own SVD makes them orthonormal: nothing left to penalise
    _, diversity = group_rewards(torch.randn(3, 8, generator=torch.Generator().manual_seed(0)), torch.randn(8),
                                 whiten=True)
    assert torch.allclose(diversity, torch.zeros(3), atol=1e-5)


def test_pooling_reads_real_tokens_of_right_padded_rows():
    features = torch.arange(12.0).reshape(2, 3, 2)  # 2 rows, 3 positions
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    prompt_lens = torch.tensor([1, 2])
    assert pool(features, mask, prompt_lens, "last_token").tolist() == [[2.0, 3.0], [10.0, 11.0]]
    assert pool(features, mask, prompt_lens, "mean_pooling").tolist() == [[1.0, 2.0], [8.0, 9.0]]
    assert pool(features, mask, prompt_lens, "completion_mean").tolist() == [[2.0, 3.0], [10.0, 11.0]]


@pytest.fixture
def tiny(tiny_model):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    from axo.data.templates import CHATML

    tokenizer.chat_template = CHATML
    return AutoModelForCausalLM.from_pretrained(tiny_model), tokenizer


def scores(model, tokenizer, **options):
    matching = FeatureMatching(model, tokenizer, EBFTOptions(**options), max_length=64)
    return [f(prompts=PROMPTS, completions=ANSWERS, ground_truth=TRUTH) for f in matching.reward_funcs]


def test_features_come_from_the_starting_model(tiny):
    model, tokenizer = tiny
    alignment, diversity = scores(model, tokenizer)
    assert alignment[0] == pytest.approx(2.0, abs=1e-4)  # the answer is the reference
    assert alignment[1] < alignment[0] and len(diversity) == 4
    answer_only, _ = scores(model, tokenizer, embed_method="completion_mean")  # pooled after the prompt
    assert answer_only[0] == pytest.approx(2.0, abs=1e-4) and answer_only[1] < answer_only[0]
    # a full fine-tune: a frozen copy taken at the start, so training the model changes nothing
    matching = FeatureMatching(model, tokenizer, EBFTOptions(), max_length=64)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    assert matching.ebft_alignment(PROMPTS, ANSWERS, TRUTH) == pytest.approx(alignment, abs=1e-5)
    # LoRA: the base under the adapter; a trained adapter does not move the features
    fresh = AutoModelForCausalLM.from_pretrained(tiny[0].name_or_path)
    peft_model = get_peft_model(fresh, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False))
    assert scores(peft_model, tokenizer)[0] == pytest.approx(alignment, abs=1e-5)


def test_ebft_lora_run_logs_both_terms(make_config, tmp_path):
    from axo.train.grpo import train

    rows = tmp_path / "code.jsonl"
    source = [json.loads(line) for line in (EXAMPLES / "data" / "sort_test.jsonl").read_text().splitlines()][:16]
    rows.write_text("".join(json.dumps({"input": r["instruction"], "output": r["output"]}) + "\n" for r in source))
    cfg = make_config(rl="ebft", ebft={"feature_layers": [0.5, 1.0], "use_whitening": True},
                      trl={"num_generations": 4, "max_completion_length": 8},
                      datasets=[{"path": str(rows), "type": "ebft_opencode.transform"}], chat_template="chatml",
                      adapter="lora", lora_r=4, lora_alpha=8, lora_target_linear=True,
                      micro_batch_size=8, max_steps=3, learning_rate=1e-4)
    train(cfg)
    logs = [e for e in read_log_history(cfg.train.output_dir) if "reward" in e]
    assert len(logs) == 3
    for e in logs:
        align, div = e["rewards/ebft_alignment/mean"], e["rewards/ebft_diversity/mean"]
        assert -2 <= align <= 2
        assert e["reward"] == pytest.approx(align - div, abs=1e-4)  # weights alignment_coef, -diversity_coef
    assert json.loads((Path(cfg.train.output_dir) / "run_summary.json").read_text())["method"] == "ebft"
    assert (Path(cfg.train.output_dir) / "adapter_config.json").exists()
