"""GRPO runs on the CPU with the training model generating, and logs the user's reward.
(The acceptance check that the reward rises from an SFT-trained start is not written yet.)"""

import json
import shutil
import sys
from pathlib import Path

from axo.train.grpo import train
from conftest import EXAMPLES, read_log_history

USER_CODE = Path(__file__).parents[1] / "fixtures" / "user_code"


def test_grpo_runs_and_logs_the_reward(make_config, tmp_path, monkeypatch):
    shutil.copy(USER_CODE / "sort_rewards.py", tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = make_config(rl="grpo", trl={"reward_funcs": ["sort_rewards.exact"], "num_generations": 4,
                                      "max_completion_length": 8},
                      datasets=[{"path": str(EXAMPLES / "data" / "sort_test.jsonl"), "type": "sort_rewards.to_prompt"}],
                      micro_batch_size=8, max_steps=3, learning_rate=1e-4)
    train(cfg)
    logs = [e for e in read_log_history(cfg.train.output_dir) if "reward" in e]
    assert len(logs) == 3 and all(0.0 <= e["reward"] <= 1.0 for e in logs)
    assert "rewards/exact/mean" in logs[-1]
    assert json.loads((Path(cfg.train.output_dir) / "run_summary.json").read_text())["method"] == "grpo"
    assert "sort_rewards" in sys.modules
