"""GRPO's config: reward functions and transforms are imported and checked when the config loads
(before any model), and the TRL mapping carries the rollout, loss and vLLM options."""

import shutil
from pathlib import Path

import pytest

from axo.config import load
from axo.errors import ConfigError
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
