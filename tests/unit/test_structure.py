"""Facts of the code's structure that the design relies on (DESIGN.md): the training method is
decided in one place, and the model layer does not reach into the data layer."""

import re
from pathlib import Path

SRC = Path(__file__).parents[2] / "src" / "axo"


def sources(folder: Path = SRC):
    return {path: path.read_text() for path in sorted(folder.rglob("*.py"))}


def test_model_does_not_import_data():
    imports = re.compile(r"^\s*(from|import) axo\.data", re.M)
    assert [p.name for p, text in sources(SRC / "model").items() if imports.search(text)] == []


def test_the_method_is_decided_in_one_place():
    """Only method_name() reads the keys that choose the method; everything else reads cfg.method."""
    # the keys themselves: `.reward_model`, `.process_reward_model`, and the `rl` key read off its area
    # (`cfg.rl.rl`, `r.rl`, `rl.rl`)
    choosing = re.compile(r"\.(reward_model|process_reward_model)\b|\b(cfg\.rl|r|rl)\.rl\b")
    readers = {p.relative_to(SRC).as_posix() for p, text in sources().items() if choosing.search(text)}
    assert readers == {"methods.py"}, readers


def test_the_gpu_check_runs_on_a_cpu_and_says_what_it_skips():
    import subprocess

    root = Path(__file__).parents[2]
    run = subprocess.run(["bash", str(root / "bench" / "gpu_check.sh"), "--only", "packed_equals_unpacked_sdpa",
                          "qlora_on_cuda_bitsandbytes"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS packed_equals_unpacked_sdpa" in run.stdout
    assert "SKIP qlora_on_cuda_bitsandbytes: needs a CUDA GPU" in run.stdout
