"""`axo lm-eval`: lm-evaluation-harness scores a model axo trained on a local task defined in the repo
(examples/lm_eval/sort_digits.yaml: the quickstart's held-out rows, greedy answers, exact match),
prints the table, and records it with the run; and after training when `lm_eval_tasks` asks."""

import json
import subprocess
import sys
from pathlib import Path

import yaml

from axo.config import validate
from axo.infer.benchmark import benchmark
from conftest import EXAMPLES, QUICKSTART_PROMPT, REPO

TASK = "examples/lm_eval/sort_digits.yaml"


def lm_eval(config: dict, tmp_path, name: str) -> tuple[str, dict]:
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run([sys.executable, "-m", "axo.cli", "lm-eval", str(path), "--tasks", TASK, "--limit", "40"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout, json.loads((tmp_path / name / "run_summary.json").read_text()) if (
        tmp_path / name / "run_summary.json").exists() else {}


def test_the_trained_model_scores_above_the_untrained_one(sft_start, tmp_path, monkeypatch):
    import shutil

    monkeypatch.chdir(REPO)  # the task's data path is relative to the repository
    trained = tmp_path / "trained"
    shutil.copytree(sft_start / "sft", trained)  # the run folder: model, run_summary.json, report
    base = {"base_model": str(EXAMPLES / "tiny-llama"), "reinit_weights": True, "sequence_len": 128,
            "datasets": [{"path": str(EXAMPLES / "data" / "sort_train.jsonl"), "type": QUICKSTART_PROMPT}]}
    table, summary = lm_eval({**base, "output_dir": str(trained)}, tmp_path, "trained")
    untrained = benchmark(validate({**base, "output_dir": str(tmp_path / "untrained")}), [str(REPO / TASK)], limit=40)
    assert "sort_digits  exact_match" in table, table
    score = summary["lm_eval"]["sort_digits"]["exact_match"]  # 0.35 against 0.0 on the 2026-12 CI machine
    assert score > untrained["sort_digits"]["exact_match"] + 0.2, (score, untrained)
    assert summary["method"] == "sft"  # recorded with the run it scored
    assert "Benchmarks (lm-eval)" in (trained / "report.html").read_text()


def small_task(tmp_path) -> Path:
    """The repository's task on its first 16 rows, in a folder of its own (data named by absolute path)."""
    task = yaml.safe_load((REPO / TASK).read_text())
    rows = (REPO / task["dataset_kwargs"]["data_files"]["test"]).read_text().splitlines()[:16]
    (tmp_path / "sixteen.jsonl").write_text("\n".join(rows) + "\n")
    task.update(task="sort_sixteen", dataset_kwargs={"data_files": {"test": str(tmp_path / "sixteen.jsonl")}})
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "sixteen.yaml").write_text(yaml.safe_dump(task))
    return folder / "sixteen.yaml"


def test_training_scores_the_tasks_when_it_ends(make_config, tmp_path):
    """After a LoRA run: the harness scores the base model with the trained adapter."""
    cfg = make_config(max_steps=2, lm_eval_tasks=[str(small_task(tmp_path))], lm_eval_batch_size=16, adapter="lora",
                      lora_r=4, lora_alpha=8, lora_target_linear=True)
    from axo.train.sft import train

    summary = train(cfg)
    assert 0.0 <= summary["lm_eval"]["sort_sixteen"]["exact_match"] <= 1.0
    written = json.loads((tmp_path / "out" / "run_summary.json").read_text())
    assert written["lm_eval"] == summary["lm_eval"] and (tmp_path / "out" / "adapter_config.json").exists()
    assert "Benchmarks (lm-eval)" in (tmp_path / "out" / "report.html").read_text()
