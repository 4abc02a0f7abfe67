"""The run report (output_dir/report.html) in a real headless browser (Chromium, as Debian packages
it): it loads without console errors, every logged loss is a plotted point, and a screenshot is
written. `axo report` rebuilds it and overlays runs with their config differences."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from axo.cli import app
from axo.run_report import LOG_FILE, read_run, smooth
from axo.train.sft import train

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        pytest.skip("no Chromium here (.ci/run installs Debian's `chromium`); the report's browser test needs one")
    return found


def load(page: Path, tmp_path: Path) -> tuple[str, list[str]]:
    """The page's DOM after its scripts ran, and the console errors the browser reported."""
    run = subprocess.run([browser(), "--headless=new", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                          "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          page.as_uri()], capture_output=True, text=True, timeout=180)
    if run.returncode != 0 or "<html" not in run.stdout:
        pytest.skip(f"Chromium did not start here: {run.stderr[-500:]}")
    errors = [line for line in run.stderr.splitlines() if "CONSOLE" in line and ("Uncaught" in line or "rror" in line)]
    return run.stdout, errors


def points(dom: str, key: str) -> int:
    """Markers plotly drew in one curve: the raw points (the smoothed line has none)."""
    start = dom.index(f'id="curve-{key}"')
    end = dom.find('id="curve-', start + 10)
    return dom[start:end if end > 0 else len(dom)].count('class="point"')


def test_the_console_check_sees_an_error(tmp_path):
    """The check below would pass on a broken page if it could not see errors: it can."""
    page = tmp_path / "broken.html"
    page.write_text("<html><body><script>notAFunction()</script></body></html>")
    _, errors = load(page, tmp_path)
    assert errors and "notAFunction" in " ".join(errors)


def test_a_run_writes_a_report_that_renders_in_a_browser(make_config, tmp_path):
    cfg = make_config(max_steps=12, logging_steps=1, save_steps=6, val_set_size=0.25, eval_steps=4,
                      do_causal_lm_eval=True, eval_max_new_tokens=8, eval_table_size=2)
    train(cfg)
    out = Path(cfg.train.output_dir)
    page = out / "report.html"
    logged = [json.loads(line) for line in (out / LOG_FILE).read_text().splitlines()]
    losses = [e for e in logged if "loss" in e]
    assert len(losses) == 12 and all(e["tokens_seen"] and e["time"] for e in losses)
    assert [e["tokens_seen"] for e in losses] == sorted(e["tokens_seen"] for e in losses)

    dom, errors = load(page, tmp_path)
    assert not errors, errors
    assert points(dom, "loss") == 12  # every logged loss is a point
    assert points(dom, "eval_loss") == len([e for e in logged if "eval_loss" in e]) == 3
    assert points(dom, "learning_rate") == 12 and points(dom, "grad_norm") == 12
    assert "the digits" in dom and "class=\"trained\"" in dom  # the rows, token by token
    assert "rows in" in dom and f"axo train {out / 'axo_config.yml'}" in dom and "transformers" in dom
    assert "Generated at eval" in dom and "step 12" in dom

    shot = tmp_path / "report.png"
    subprocess.run([browser(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--virtual-time-budget=10000", f"--user-data-dir={tmp_path / 'profile2'}", "--window-size=1280,2400",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=180)
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one


def test_axo_report_overlays_two_runs_with_their_config_difference(make_config, tmp_path):
    runs = []
    for name, lr in (("slow", 1e-4), ("fast", 3e-3)):
        cfg = make_config(max_steps=6, logging_steps=1, learning_rate=lr, output_dir=str(tmp_path / name))
        train(cfg)
        runs.append(Path(cfg.train.output_dir))
    (runs[0] / "report.html").unlink()
    result = CliRunner().invoke(app, ["report", str(runs[0])])  # rebuilt from the folder alone
    assert result.exit_code == 0 and (runs[0] / "report.html").exists()

    both = tmp_path / "both.html"
    result = CliRunner().invoke(app, ["report", str(runs[0]), str(runs[1]), "--out", str(both)])
    assert result.exit_code == 0, result.output
    dom, errors = load(both, tmp_path)
    assert not errors, errors
    assert points(dom, "loss") == 12  # six points from each run
    assert "slow (logged)" in dom and "fast (logged)" in dom and "tokens seen" in dom
    diff = dom[dom.index("Config differences"):]
    assert "learning_rate" in diff[:2000] and "0.0001" in diff[:2000] and "0.003" in diff[:2000]

    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code != 0 and "not a run folder" in str(result.exception)


def test_smoothing_is_a_debiased_moving_average():
    assert smooth([1.0, 1.0, 1.0], weight=0.8) == pytest.approx([1.0, 1.0, 1.0])
    assert smooth([0.0, 10.0], weight=0.5) == pytest.approx([0.0, 10 * 0.5 / 0.75])
    assert smooth([3.0, 1.0, 2.0]) == [3.0, 1.0, 2.0]  # ten points or fewer: drawn as they are


def test_a_resumed_run_keeps_its_log_up_to_the_checkpoint(make_config, tmp_path):
    cfg = make_config(max_steps=4, logging_steps=1, save_steps=2)
    train(cfg)
    out = Path(cfg.train.output_dir)
    shutil.rmtree(out / "checkpoint-4")
    (out / "run_summary.json").unlink()
    resumed = make_config(max_steps=4, logging_steps=1, save_steps=2, resume_from_checkpoint=str(out / "checkpoint-2"))
    train(resumed)
    steps = [e["step"] for e in read_run(out).log if "loss" in e]
    assert steps == [1, 2, 3, 4]
