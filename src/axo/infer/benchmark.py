"""Benchmark scores of the trained model through EleutherAI's lm-evaluation-harness (`axo lm-eval`,
and after training when `lm_eval_tasks` is set): its Hugging Face backend runs the model axo loads
(the trained model, or the base model with the trained adapter, as `axo inference` does), so a score
is of exactly what was trained. A task is a harness task name, or the path of a task YAML file: a
local task, whose data the YAML names (nothing downloads)."""

import json
import logging
from pathlib import Path

from axo.config import Config
from axo.errors import AxoError

log = logging.getLogger("axo")
SUMMARY_KEY = "lm_eval"


def benchmark(cfg: Config, tasks: list[str] | None = None, model: str | None = None,
              limit: int | None = None) -> dict[str, dict[str, float]]:
    """{task: {metric: value}} of the trained model (or `model` / `lm_eval_model`, a folder)."""
    import importlib.util

    if importlib.util.find_spec("lm_eval") is None:
        raise AxoError("benchmark scores need lm-evaluation-harness: `pip install lm-eval` (or axo's `eval` extra)")
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from axo.model.loader import load_for_inference

    tasks = tasks or cfg.train.lm_eval_tasks
    if not tasks:
        raise AxoError("no tasks to score: set `lm_eval_tasks: [...]` or pass --tasks")
    names, folders = task_names(tasks)
    loaded, tokenizer, what = load_for_inference(cfg, checkpoint=model or cfg.train.lm_eval_model)
    log.info("lm-eval: scoring the %s on %s", what, ", ".join(names))
    logging.getLogger("lm_eval").setLevel(logging.ERROR)  # its notes on being handed a loaded model
    lm = HFLM(pretrained=loaded, tokenizer=tokenizer, batch_size=cfg.train.lm_eval_batch_size or 1,
              add_bos_token=_adds_bos(tokenizer), device=str(loaded.device))
    out = lm_eval.simple_evaluate(model=lm, tasks=names, task_manager=TaskManager(include_path=folders or None),
                                  limit=limit, log_samples=False, bootstrap_iters=0)
    return {task: {_metric_name(metric): value for metric, value in metrics.items()
                   if isinstance(value, (int, float)) and metric != "sample_len" and "_stderr" not in metric}
            for task, metrics in out["results"].items()}


def _metric_name(key: str) -> str:
    """The harness's "metric,filter" as "metric", or "metric (filter)" where a task filters its answers
    several ways (gsm8k's strict-match and flexible-extract)."""
    metric, _, applied = key.partition(",")
    return metric if applied in ("", "none") else f"{metric} ({applied})"


def task_names(tasks: list[str]) -> tuple[list[str], list[str]]:
    """(task names, folders of local task files to include)."""
    import yaml

    names, folders = [], []
    for task in tasks:
        path = Path(task)
        if path.suffix not in (".yaml", ".yml"):
            names.append(task)
            continue
        if not path.is_file():
            raise AxoError(f"`lm_eval_tasks`: the task file {task!r} does not exist. Fix: the path of a task YAML, "
                           "or a harness task name (mmlu, hellaswag...)")
        name = (yaml.safe_load(path.read_text()) or {}).get("task")
        if not isinstance(name, str):
            raise AxoError(f"`lm_eval_tasks`: {task!r} has no `task: <name>` line, so it defines no task")
        names.append(name)
        folders.append(str(path.resolve().parent))
    return names, sorted(set(folders))


def _adds_bos(tokenizer) -> bool:
    """Whether the tokenizer starts a text with BOS by itself, as training rows began: the harness
    then prepends it too, so the model is scored on text shaped like what it learned."""
    ids = tokenizer("a")["input_ids"]
    return bool(ids) and tokenizer.bos_token_id is not None and ids[0] == tokenizer.bos_token_id


def table(scores: dict[str, dict[str, float]]) -> str:
    rows = [(task, metric, f"{value:.4f}") for task, metrics in scores.items() for metric, value in metrics.items()]
    widths = [max(len(r[i]) for r in rows + [("task", "metric", "score")]) for i in range(3)]
    line = "  ".join("{:<%d}" % w for w in widths)
    return "\n".join([line.format("task", "metric", "score"), line.format(*("-" * w for w in widths)),
                      *(line.format(*r) for r in rows)])


def record(folder: str, scores: dict[str, dict[str, float]]) -> None:
    """The scores in the run's run_summary.json, and in its report when it has one."""
    from axo.run_report import REPORT_FILE, write_report

    path = Path(folder, "run_summary.json")
    summary = json.loads(path.read_text()) if path.exists() else {}
    summary[SUMMARY_KEY] = {**summary.get(SUMMARY_KEY, {}), **scores}
    Path(folder).mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2))
    if Path(folder, REPORT_FILE).exists():
        write_report(folder)
