"""`output_dir/report.html`: one self-contained page per run (no network, no server) built from
the run's own files, so `axo report DIR [DIR ...]` rebuilds it, or overlays several runs:

    axo_log.jsonl        every logged step (loss, learning rate, gradient norm, eval metrics), with
                         the tokens seen and the wall time (written by RunLog as training logs)
    report_data.json     the environment, the command, sample rows and their lengths (RunLog)
    run_summary.json     data statistics, memory, final metrics (written at the end)
    axo_config.yml       the resolved config
    eval_samples/        answers generated at each eval (`eval_table_size`)

Curves are plotly figures (plotly.js embedded once); everything else is plain HTML."""

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

LOG_FILE = "axo_log.jsonl"
DATA_FILE = "report_data.json"
REPORT_FILE = "report.html"
CURVES = (("loss", "training loss"), ("eval_loss", "eval loss"), ("learning_rate", "learning rate"),
          ("grad_norm", "gradient norm"), ("tokens_per_second", "tokens / s"))
SKIP_METRICS = {"epoch", "step", "tokens_seen", "time", "eval_runtime", "eval_samples_per_second",
                "eval_steps_per_second", "total_flos", "train_runtime", "train_samples_per_second",
                "train_steps_per_second", "train_loss", "train_tokens_per_second", "num_input_tokens_seen"}
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf")


@dataclass
class Run:
    name: str
    folder: Path
    log: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    samples: dict[int, list[dict]] = field(default_factory=dict)


def read_run(folder: Path) -> Run:
    import yaml

    from axo.errors import AxoError
    from axo.train.outputs import CONFIG_FILE

    folder = Path(folder)
    if not (folder / LOG_FILE).exists() and not (folder / "run_summary.json").exists():
        raise AxoError(f"{folder}: not a run folder of axo (no {LOG_FILE} or run_summary.json). Fix: give an "
                       "`output_dir` axo trained into.")
    run = Run(folder.name, folder)
    if (folder / LOG_FILE).exists():
        run.log = [json.loads(line) for line in (folder / LOG_FILE).read_text().splitlines() if line.strip()]
    for attribute, name in (("summary", "run_summary.json"), ("data", DATA_FILE)):
        if (folder / name).exists():
            setattr(run, attribute, json.loads((folder / name).read_text()))
    if (folder / CONFIG_FILE).exists():
        run.config = yaml.safe_load((folder / CONFIG_FILE).read_text()) or {}
    for path in sorted((folder / "eval_samples").glob("step-*.jsonl")):
        step = int(path.stem.split("-")[1])
        run.samples[step] = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return run


def write_report(folder, runs: list[Run] | None = None, out: Path | None = None) -> Path:
    """report.html of one run (in its folder), or of several runs overlaid (at `out`)."""
    runs = runs or [read_run(Path(folder))]
    path = Path(out) if out else Path(folder) / REPORT_FILE
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render(runs), encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a report
    return path


def render(runs: list[Run]) -> str:
    from plotly.offline import get_plotlyjs

    title = runs[0].name if len(runs) == 1 else " vs ".join(r.name for r in runs)
    parts = [_header(runs), _section("Curves", _curves(runs))]
    if any(run.summary.get("lm_eval") for run in runs):
        parts.append(_section("Benchmarks (lm-eval)", _benchmarks(runs)))
    if len(runs) > 1:
        parts.append(_section("Config differences", _config_diff(runs)))
    for run in runs:
        prefix = f"{run.name}: " if len(runs) > 1 else ""
        parts.append(_section(f"{prefix}Data", _data(run)))
        if run.samples:
            parts.append(_section(f"{prefix}Generated at eval", _generations(run)))
        if len(runs) == 1:
            parts.append(_section("Config", _config(run)))
        parts.append(_section(f"{prefix}Environment", _environment(run)))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>axo: {html.escape(title)}</title>"
            f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head><body>"
            f"<h1>axo run report: {html.escape(title)}</h1>{''.join(parts)}</body></html>")


STYLE = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1200px;color:#222}
h1{font-size:22px} h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f5f5f5} .changed{background:#fff3c4} .grid{display:grid;grid-template-columns:1fr 1fr;gap:8px}
.tokens{font-family:monospace;font-size:13px;line-height:1.9;white-space:pre-wrap;border:1px solid #eee;padding:8px}
.trained{background:#c8f0c8} .masked{color:#999} code{background:#f5f5f5;padding:1px 4px}
.failed{color:#b00;font-weight:bold}
"""


def _section(title: str, body: str) -> str:
    return f"<h2>{html.escape(title)}</h2>{body}"


def _table(rows: list[list], head: list[str] | None = None, classes: list[str] | None = None) -> str:
    out = ["<table>"]
    if head:
        out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in head) + "</tr>")
    for i, row in enumerate(rows):
        cls = f" class='{classes[i]}'" if classes and classes[i] else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>")
    return "".join(out) + "</table>"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and abs(value) >= 10000:
        return f"{value:,}"
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _header(runs: list[Run]) -> str:
    rows = []
    for run in runs:
        s = run.summary
        status = s.get("status", "complete" if s else "running")
        last = next((e["loss"] for e in reversed(run.log) if "loss" in e), None)
        evals = [e["eval_loss"] for e in run.log if "eval_loss" in e]
        rows.append([run.name, s.get("method", run.config.get("rl") or "sft"), status,
                     run.log[-1].get("step", "") if run.log else "", last, evals[-1] if evals else "",
                     s.get("train_runtime", ""), str(run.folder)])
    return _table(rows, ["run", "method", "status", "steps", "last loss", "last eval loss", "seconds", "folder"],
                  ["failed" if r[2] == "failed" else "" for r in rows])


def _series(run: Run, key: str) -> tuple[list, list, list]:
    """(steps, tokens seen, values) of one logged quantity; tokens/s is derived from consecutive
    logs' tokens seen and wall times."""
    if key == "tokens_per_second":
        points = [e for e in run.log if "loss" in e and e.get("tokens_seen") and e.get("time")]
        pairs = list(zip(points, points[1:]))
        return ([b["step"] for _, b in pairs], [b["tokens_seen"] for _, b in pairs],
                [(b["tokens_seen"] - a["tokens_seen"]) / max(b["time"] - a["time"], 1e-9) for a, b in pairs])
    points = [e for e in run.log if isinstance(e.get(key), (int, float))]
    return [e["step"] for e in points], [e.get("tokens_seen") for e in points], [e[key] for e in points]


def smooth(values: list[float], weight: float | None = None) -> list[float]:
    """Exponential moving average, debiased (as TensorBoard's smoothing); by default lighter for
    short series (none for 10 points or fewer, 0.8 from 50), which a heavy average would drag."""
    if weight is None:
        weight = max(0.0, min(0.8, 1 - 10 / max(len(values), 1)))
    out, last = [], 0.0
    for i, v in enumerate(values):
        last = weight * last + (1 - weight) * v
        out.append(last / (1 - weight ** (i + 1)))
    return out


def _curves(runs: list[Run]) -> str:
    """axo's curves first, then every other number the trainer logged (TRL's rewards, margins, KL...),
    the eval metrics last."""
    keys = [k for k, _ in CURVES]
    logged = {k for r in runs for e in r.log for k, v in e.items()
              if k not in keys and k not in SKIP_METRICS and isinstance(v, (int, float)) and not isinstance(v, bool)}
    train = sorted(k for k in logged if not k.startswith("eval_"))
    evals = sorted(k for k in logged if k.startswith("eval_"))
    names = dict(CURVES) | {k: k.replace("_", " ") for k in train} | {
        k: k.removeprefix("eval_").replace("_", " ") + " (eval)" for k in evals}
    figures = [_figure(runs, key, names[key]) for key in keys + train + evals]
    return "<div class='grid'>" + "".join(f for f in figures if f) + "</div>"


def _figure(runs: list[Run], key: str, title: str) -> str:
    import plotly.graph_objects as go

    fig = go.Figure()
    tokens_known = True
    for i, run in enumerate(runs):
        steps, tokens, values = _series(run, key)
        if not values:
            continue
        tokens_known &= all(t is not None for t in tokens)
        color = COLORS[i % len(COLORS)]
        label = run.name if len(runs) > 1 else key
        fig.add_scatter(x=steps, y=values, mode="markers", name=f"{label} (logged)", marker={"size": 4, "color": color},
                        opacity=0.45, meta={"tokens": tokens, "steps": steps})
        line = values if key == "learning_rate" else smooth(values)  # a schedule is drawn as it is
        fig.add_scatter(x=steps, y=line, mode="lines", name=f"{label} (smoothed)",
                        line={"color": color}, meta={"tokens": tokens, "steps": steps})
    if not fig.data:
        return ""
    by_tokens = len(runs) > 1 and tokens_known  # runs of different batch sizes compare by tokens seen
    if by_tokens:
        for trace in fig.data:
            trace.x = trace.meta["tokens"]
    menus = []
    if tokens_known:  # the x axis: optimizer steps, or tokens seen
        menus = [{"type": "buttons", "direction": "right", "x": 1, "y": 1.18, "xanchor": "right", "buttons": [
            {"label": "steps", "method": "update",
             "args": [{"x": [t.meta["steps"] for t in fig.data]}, {"xaxis.title.text": "step"}]},
            {"label": "tokens", "method": "update",
             "args": [{"x": [t.meta["tokens"] for t in fig.data]}, {"xaxis.title.text": "tokens seen"}]}]}]
    fig.update_layout(title=title, height=320, margin={"l": 50, "r": 10, "t": 60, "b": 40}, updatemenus=menus,
                      xaxis_title="tokens seen" if by_tokens else "step", showlegend=len(runs) > 1,
                      template="plotly_white")
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"curve-{key}")


def _data(run: Run) -> str:
    stats = [s for s in run.summary.get("data", []) if "rows_in" in s]
    parts = []
    if stats:
        rows = []
        for s in stats:
            dropped = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in s.items()
                                if k not in ("dataset", "path", "rows_in", "rows_out", "tokens", "trained_tokens")
                                and isinstance(v, int) and v and not k.startswith("len"))
            share = s.get("trained_tokens", 0) / s["tokens"] if s.get("tokens") else None
            rows.append([s.get("dataset"), s.get("path"), s.get("rows_in"), s.get("rows_out"), dropped or "none",
                         s.get("tokens", ""), f"{share:.1%}" if share is not None else ""])
        parts.append(_table(rows, ["dataset", "path", "rows in", "rows out", "dropped", "tokens", "trained tokens"]))
    if "packing_efficiency" in run.summary:
        parts.append(f"<p>Packing: {run.summary['packing_efficiency']:.1%} of each packed sequence holds tokens "
                     f"(sequence of {run.summary.get('pack_length', '?')} tokens).</p>")
    lengths = run.data.get("lengths")
    if lengths:
        parts.append(_histogram(lengths))
    for row in run.data.get("rows", []):
        parts.append(_token_row(row))
    return "".join(parts) or "<p>No data statistics recorded.</p>"


def _histogram(lengths: list[int]) -> str:
    import plotly.graph_objects as go

    width = max(1, (max(lengths) - min(lengths)) // 40)
    fig = go.Figure(go.Histogram(x=lengths, xbins={"size": width}, marker_color=COLORS[0]))
    fig.update_layout(title="tokens per training sequence", height=260, template="plotly_white",
                      margin={"l": 50, "r": 10, "t": 40, "b": 40}, xaxis_title="tokens", yaxis_title="sequences")
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id="data-lengths")


def _token_row(row: dict) -> str:
    """A row token by token, as `axo preprocess --debug` shows it: trained tokens on green."""
    spans = "".join(f"<span class='{'trained' if trained else 'masked'}'>{html.escape(text)}</span>"
                    for text, trained in row["tokens"])
    return (f"<p>Row {row['index'] + 1}: {row['trained']} of {len(row['tokens'])} tokens trained "
            f"(<span class='trained'>trained</span>, <span class='masked'>masked</span>)</p>"
            f"<div class='tokens'>{spans}</div>")


def _benchmarks(runs: list[Run]) -> str:
    rows = [[run.name, task, metric, value] for run in runs
            for task, metrics in run.summary.get("lm_eval", {}).items() for metric, value in metrics.items()]
    return _table(rows, ["run", "task", "metric", "score"])


def _generations(run: Run) -> str:
    parts = []
    for step, samples in sorted(run.samples.items()):
        rows = [[s.get("prompt", ""), s.get("expected", ""), s.get("generated", ""),
                 "yes" if s.get("generated", "").strip() == s.get("expected", "").strip() else "no"] for s in samples]
        parts.append(f"<p>step {step}</p>" + _table(rows, ["prompt", "expected", "generated", "exact"]))
    return "".join(parts)


def _defaults() -> dict:
    from axo.config import validate

    return validate({"base_model": "m", "datasets": [{"path": "d", "type": "alpaca"}]}).to_flat()


def _config(run: Run) -> str:
    defaults = _defaults()
    keys = sorted(run.config)
    changed = [k for k in keys if run.config[k] != defaults.get(k)]
    rows = [[k, run.config[k]] for k in changed + [k for k in keys if k not in changed]]
    note = f"<p>{len(changed)} keys differ from axo's defaults (marked; listed first).</p>"
    return note + _table(rows, ["key", "value"], ["changed"] * len(changed) + [""] * (len(rows) - len(changed)))


def _config_diff(runs: list[Run]) -> str:
    keys = sorted({k for r in runs for k in r.config})
    differ = [k for k in keys if len({json.dumps(r.config.get(k), sort_keys=True) for r in runs}) > 1
              and k != "output_dir"]
    if not differ:
        return "<p>The configs are the same (apart from output_dir).</p>"
    return _table([[k, *[r.config.get(k) for r in runs]] for k in differ], ["key", *[r.name for r in runs]])


def _environment(run: Run) -> str:
    env = run.data.get("environment", {})
    rows = [[k, v] for k, v in env.items()]
    lines = [(label, run.data[key]) for key, label in (
        ("command", "Started with"), ("reproduce", "Reproduce exactly (the resolved config, every default filled in)"))
        if run.data.get(key)]
    return (_table(rows, ["", ""]) if rows else "") + "".join(
        f"<p>{label}: <code>{html.escape(text)}</code></p>" for label, text in lines)


def environment() -> dict:
    """Versions of axo and the libraries it trains with, the hardware and the processes."""
    import os
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import torch

    env = {"python": platform.python_version()}
    for package in ("axo", "torch", "transformers", "peft", "trl", "accelerate", "datasets", "bitsandbytes", "torchao"):
        try:
            env[package] = version(package)
        except PackageNotFoundError:
            pass
    if torch.cuda.is_available():
        env["hardware"] = f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    else:
        env["hardware"] = f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    env["processes"] = int(os.environ.get("WORLD_SIZE", "1"))
    return env
