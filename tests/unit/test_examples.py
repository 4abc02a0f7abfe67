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
