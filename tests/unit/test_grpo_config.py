"""GRPO's config: reward functions and transforms are imported and checked when the config loads
(before any model), and the TRL mapping carries the rollout, loss and vLLM options."""

import logging
import shutil
from pathlib import Path

import pytest

from axo.config import load
from axo.errors import ConfigError
import torch

from axo.train.trl_args import to_grpo_config

USER_CODE = Path(__file__).parents[1] / "fixtures" / "user_code"


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    shutil.copy(USER_CODE / "sort_rewards.py", tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def write(text: str) -> Path:
    path = Path("cfg.yml")  # next to sort_rewards.py, which then imports like an installed module
    path.write_text(text)
    return path


GRPO = ("base_model: m\nrl: grpo\ndatasets:\n  - path: d.jsonl\n    type: sort_rewards.to_prompt\n"
        "trl:\n  reward_funcs: [{funcs}]\n")


def test_reward_functions_import_when_the_config_loads():
    cfg = load(write(GRPO.format(funcs="sort_rewards.exact")))
    assert cfg.rl.trl.reward_funcs == ["sort_rewards.exact"]
    with pytest.raises(ConfigError) as err:
        load(write(GRPO.format(funcs="sort_rewards.nope, missing_module.f, sort_rewards.no_kwargs")))
    problems = "\n".join(err.value.problems)
    assert "`trl.reward_funcs[0]`: cannot import 'sort_rewards.nope'" in problems
    assert "`trl.reward_funcs[1]`: cannot import 'missing_module.f'" in problems
    assert "`trl.reward_funcs[2]`: 'sort_rewards.no_kwargs' has the wrong signature (completions)" in problems


def test_grpo_needs_reward_functions_and_prompt_rows():
    with pytest.raises(ConfigError, match="`rl: grpo` needs reward functions"):
        load(write("base_model: m\nrl: grpo\ndatasets:\n  - path: d.jsonl\n    type: sort_rewards.to_prompt\n"))
    with pytest.raises(ConfigError, match="`alpaca` is not a row format of `rl: grpo`; use chat_template, transform"):
        load(write(GRPO.format(funcs="sort_rewards.exact").replace("sort_rewards.to_prompt", "alpaca")))


def test_grpo_mapping_carries_rollout_loss_and_vllm_options():
    text = GRPO.format(funcs="sort_rewards.exact") + (
        "  num_generations: 4\n  max_completion_length: 16\n  temperature: 0.7\n  beta: 0.0\n  epsilon: 0.3\n"
        "  loss_type: dr_grpo\n  scale_rewards: batch\n  mask_truncated_completions: true\n  log_completions: true\n"
        "  use_vllm: true\n  vllm_mode: server\n  vllm_server_port: 8123\nmicro_batch_size: 4\n")
    args = to_grpo_config(load(write(text)), "fp32", has_eval=False)
    assert (args.num_generations, args.max_completion_length, args.temperature, args.beta, args.epsilon) == \
        (4, 16, 0.7, 0.0, 0.3)
    assert (args.loss_type, args.scale_rewards, args.mask_truncated_completions) == ("dr_grpo", "batch", True)
    assert (args.use_vllm, args.vllm_mode, args.vllm_server_port) == (True, "server", 8123)
    kwargs = "chat_template_kwargs: {enable_thinking: false}\n"
    assert to_grpo_config(load(write(text + kwargs)), "fp32", has_eval=False).chat_template_kwargs == \
        {"enable_thinking": False}  # the top-level variables, as SFT and preference rows get them


def test_vllm_serve_without_vllm_is_a_clear_error():
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here: the GPU path is for a GPU session")
    path = write(GRPO.format(funcs="sort_rewards.exact"))
    run = subprocess.run([sys.executable, "-m", "axo", "vllm-serve", str(path)], capture_output=True, text=True)
    assert run.returncode == 2 and "needs vLLM" in run.stderr and "Traceback" not in run.stderr


def test_chat_template_prompt_mapping(make_config, tmp_path):
    import json

    from axo.data.prepare import prepare
    from axo.model.tokenizer import load_tokenizer

    path = tmp_path / "chat.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "system", "content": "Sort."}, {"role": "user", "content": "3 1"},
                                             {"role": "assistant", "content": "1 3"}], "answer": "1 3"}) + "\n")
    cfg = make_config(rl="grpo", trl={"reward_funcs": ["sort_rewards.exact"], "max_completion_length": 16},
                      chat_template="chatml",
                      datasets=[{"path": str(path), "type": "chat_template"}])
    [row] = prepare(cfg, load_tokenizer(cfg)).train
    assert row["prompt"] == [{"role": "system", "content": "Sort."}, {"role": "user", "content": "3 1"}]
    assert row["answer"] == "1 3"  # other columns reach the reward functions


def test_the_vllm_block_reaches_trl_vllm_serve_and_training(caplog):
    from axo.cli import serve_command

    text = GRPO.format(funcs="sort_rewards.exact") + (
        "  use_vllm: true\nvllm:\n  host: 10.0.0.2\n  port: 8001\n  gpu_memory_utilization: 0.7\n"
        "  max_model_len: 2048\n  enforce_eager: true\n  serve_module: axolotl.scripts.vllm_serve_lora\n"
        "micro_batch_size: 8\n")
    cfg = load(write(text))
    command = serve_command(cfg)
    assert command[:4] == ["trl", "vllm-serve", "--model", "m"]
    assert " ".join(command[4:]) == ("--host 10.0.0.2 --port 8001 --gpu_memory_utilization 0.7 "
                                     "--max_model_len 2048 --enforce_eager true")
    assert "`vllm.serve_module` is not passed: axo serves with `trl vllm-serve`" in caplog.text
    args = to_grpo_config(cfg, "fp32", has_eval=False)
    assert (args.vllm_server_host, args.vllm_server_port) == ("10.0.0.2", 8001)  # training reaches that server
    # trl:'s own host and port win, for both
    both = load(write(text.replace("  use_vllm: true\n", "  use_vllm: true\n  vllm_server_port: 9000\n")))
    assert "--port 9000" in " ".join(serve_command(both)) and to_grpo_config(both, "fp32", False).vllm_server_port == 9000


def test_ebft_reads_axolotls_transforms_and_weights_its_two_terms():
    text = ("base_model: m\nrl: ebft\nebft:\n  alignment_coef: 1.0\n  diversity_coef: 0.5\n"
            "datasets:\n  - path: d.jsonl\n    type: ebft_opencode.transform\nmicro_batch_size: 4\n"
            "trl:\n  num_generations: 4\n")
    args = to_grpo_config(load(write(text)), "fp32", has_eval=False)
    assert args.reward_weights == [1.0, -0.5]
    with pytest.raises(ConfigError, match=r"`trl.reward_funcs` \(line 12\): does nothing with `rl: ebft`"):
        load(write(text + "  reward_funcs: [sort_rewards.exact]\n"))
    with pytest.raises(ConfigError, match=r"`ebft.ce_coef` \(line \d+\): the cross-entropy term"):
        load(write(text.replace("diversity_coef: 0.5", "ce_coef: 0.03")))


def test_a_regex_lora_target_reaches_peft_as_one():
    from axo.config import validate

    base = {"base_model": "m", "datasets": [{"path": "d.jsonl", "type": "alpaca"}], "adapter": "lora"}
    pattern = r".*\.layers\.(3|7)\.self_attn\.(q|v)_proj"
    assert validate({**base, "lora_target_modules": pattern}).lora.lora_target_modules == pattern
    assert validate({**base, "lora_target_modules": "self_attn.q_proj"}).lora.lora_target_modules == \
        ["self_attn.q_proj"]  # a name (peft matches it as a suffix), not a pattern


def test_grpo_variants_are_grpo_with_their_option(caplog):
    caplog.set_level(logging.INFO, logger="axo")
    gdpo = load(write(GRPO.replace("grpo", "gdpo", 1).format(funcs="sort_rewards.exact")))
    assert gdpo.method.name == "grpo" and gdpo.rl.trl.multi_objective_aggregation == "normalize_then_sum"
    gspo = load(write(GRPO.replace("grpo", "gspo", 1).format(funcs="sort_rewards.exact")))
    assert gspo.rl.trl.importance_sampling_level == "sequence" and gspo.rl.trl.reward_funcs == ["sort_rewards.exact"]
    assert "`rl: gspo` (line 2): GRPO with one importance ratio per answer (GSPO)" in caplog.text
    with pytest.raises(ConfigError) as err:
        load(write(GRPO.replace("grpo", "gspo", 1).format(funcs="sort_rewards.exact") +
                   "  importance_sampling_level: token\n"))
    msg = str(err.value)
    assert "`rl: gspo` (line 2) means `trl.importance_sampling_level: sequence`, but it is 'token'" in msg


def hand_loss(logps, old, advantages, mask, loss_type, level, epsilon, max_completion_length):
    """GRPO's loss written out from its papers' definitions, on per-token log-probs [B, T]."""
    if level == "token":
        ratio = (logps - old).exp()
    else:  # GSPO: one ratio per answer, the geometric mean of its tokens' ratios
        ratio = (((logps - old) * mask).sum(-1) / mask.sum(-1)).exp()[:, None].expand_as(logps)
    a = advantages[:, None]
    per_token = -torch.min(ratio * a, ratio.clamp(1 - epsilon, 1 + epsilon) * a)
    if loss_type == "grpo":  # each answer's mean, then the mean over answers
        return ((per_token * mask).sum(-1) / mask.sum(-1)).mean()
    if loss_type in ("bnpo", "dapo"):  # the mean over every token of the batch (one process, one step)
        return (per_token * mask).sum() / mask.sum()
    if loss_type == "dr_grpo":  # a constant denominator: answers x the longest allowed answer
        return (per_token * mask).sum() / (mask.shape[0] * max_completion_length)
    raise ValueError(loss_type)


@pytest.mark.parametrize("level", ["token", "sequence"])
@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo"])
def test_each_grpo_loss_type_gives_its_documented_loss(loss_type, level, tiny_model, tmp_path):
    """`trl.loss_type` and `trl.importance_sampling_level` reach TRL and change the loss of one fixed
    batch exactly as the methods define it (ratios both inside and outside the clip range)."""
    import torch.nn.functional as F
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOTrainer

    import sort_rewards

    cfg = load(write(GRPO.format(funcs="sort_rewards.exact") + f"  loss_type: {loss_type}\n"
                     f"  importance_sampling_level: {level}\n  max_completion_length: 6\n  num_generations: 2\n"
                     f"  beta: 0.0\n  epsilon: 0.2\nmicro_batch_size: 4\noutput_dir: {tmp_path}\n"))
    args = to_grpo_config(cfg, "fp32", has_eval=False)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.pad_token = tokenizer.eos_token
    trainer = GRPOTrainer(model=model, reward_funcs=[sort_rewards.exact], args=args, processing_class=tokenizer,
                          train_dataset=Dataset.from_list([{"prompt": "Sort 3 1 2", "answer": "1 2 3"}] * 4))
    trainer.current_gradient_accumulation_steps = 1
    torch.manual_seed(0)
    prompt, completion = torch.randint(2, 300, (4, 3)), torch.randint(2, 300, (4, 6))
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 5 + [0], [1] * 2 + [0] * 4])
    with torch.no_grad():
        logits = model(torch.cat([prompt, completion], 1)).logits[:, 2:-1]
        logps = F.log_softmax(logits, -1).gather(-1, completion[..., None])[..., 0]
    old = logps - torch.linspace(-0.4, 0.4, 24).reshape(4, 6)  # ratios from e^-0.4 to e^0.4
    advantages = torch.tensor([1.0, -0.5, 0.7, -1.2])
    inputs = {"prompt_ids": prompt, "prompt_mask": torch.ones_like(prompt), "completion_ids": completion,
              "completion_mask": mask, "advantages": advantages, "old_per_token_logps": old,
              "num_items_in_batch": mask.sum()}
    model.train()
    loss = trainer._compute_loss(model, inputs)
    expected = hand_loss(logps, old, advantages, mask.float(), loss_type, level, 0.2, 6)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4, abs=1e-6)
