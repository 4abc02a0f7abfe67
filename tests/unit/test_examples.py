"""Every config shipped in examples/ validates and starts with the command that runs it."""

from pathlib import Path

import pytest

from axo.config import load

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("**/*.yml"))


def test_there_are_examples():
    assert EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates(path, monkeypatch):
    monkeypatch.chdir(Path(__file__).parents[2])  # example paths are relative to the repo root
    cfg = load(path)
    first = path.read_text().splitlines()[0]
    assert first.startswith("# axo ") and path.name in first
    for ds in cfg.data.datasets + (cfg.data.test_datasets or []):
        assert Path(ds.path).exists(), ds.path


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("prepared")  # examples on the same data share one prepared copy


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_preprocesses(path, monkeypatch, tmp_path, shared_cache):
    """`axo preprocess` prepares every example's data as its training would, whatever the method,
    and prints the statistics table. Examples that start from the quickstart's trained model read
    its tokenizer, which is the tiny model's: that one stands in when the quickstart has not run."""
    from typer.testing import CliRunner

    from axo.cli import app

    repo = Path(__file__).parents[2]
    monkeypatch.chdir(repo)
    args = ["preprocess", str(path), "--output_dir", str(tmp_path), "--dataset_prepared_path", str(shared_cache)]
    if not Path(load(path).model.base_model).exists():
        args += ["--base_model", "examples/tiny-llama"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    assert "Prepared data" in result.output and "rows in" in result.output and "rows out" in result.output
    if load(path).method.name in ("dpo", "orpo", "reward"):
        assert "chosen len p50" in result.output and "prompt len max" in result.output
    if load(path).method.name == "grpo":
        assert "prompt len p50" in result.output
