"""A typo of a key that changes what is learned is an error naming the typo and the key (Axolotl dropped
it silently: `lora_rr: 8` trained at rank 8's default). On a fixed sample: every config shipped in
examples/ and the Axolotl seed config, every key of theirs that changes what is learned, renamed by each
of the three one-letter edits (a letter doubled, one dropped, two neighbours swapped). The same check on
users' own configs is `python bench/user_configs.py CORPUS --typos 80` (bench/RESULTS.md)."""

from pathlib import Path

import pytest
import yaml

from axo.config.compat import TABLE, learned
from axo.config.loader import one_edit_from, validate
from axo.config.root import KEY_AREA
from axo.errors import ConfigError

REPO = Path(__file__).parents[2]
SAMPLE = sorted((REPO / "examples").glob("**/*.yml")) + [REPO / "tests" / "fixtures" / "seed.yml"]


def edited(key: str, kind: int) -> str:
    i = max(1, len(key) // 2)
    if kind == 0:
        return key[:i] + key[i] + key[i:]  # a letter doubled
    if kind == 1:
        return key[:i] + key[i + 1:]  # a letter dropped
    return key[:i - 1] + key[i] + key[i - 1] + key[i + 1:]  # two neighbours swapped


def cases():
    for path in SAMPLE:
        raw = yaml.safe_load(path.read_text())
        for key in sorted(k for k in raw if learned(k)):
            for kind in range(3):
                typo = edited(key, kind)
                if typo != key and typo not in KEY_AREA and typo not in TABLE:
                    yield pytest.param(path, key, typo, id=f"{path.stem}:{typo}")


def test_the_sample_is_large():
    assert len(list(cases())) > 200 and len(SAMPLE) > 15


@pytest.mark.parametrize("path, key, typo", list(cases()))
def test_a_typo_of_a_learned_key_is_an_error_naming_both(path, key, typo, monkeypatch):
    monkeypatch.chdir(REPO)  # (example paths are relative to the repository)
    from axo.config.user_code import make_importable

    make_importable(path.parent)
    raw = yaml.safe_load(path.read_text())
    with pytest.raises(ConfigError) as err:
        validate({(typo if k == key else k): v for k, v in raw.items()}, source=str(path))
    assert any(p.startswith(f"`{typo}`: unknown key; did you mean ") and f"`{key}`" in p.split("?")[0]
               for p in err.value.problems), err.value.problems


def test_one_edit_means_one_letter_added_dropped_changed_or_two_swapped():
    names = {"lora_r", "learning_rate", "micro_batch_size", "rl", "trl"}
    assert one_edit_from("lora_rr", names) == ["lora_r"] and one_edit_from("learning_rat", names) == ["learning_rate"]
    assert one_edit_from("micro_batch_sise", names) == ["micro_batch_size"]  # changed
    assert one_edit_from("micro_bacth_size", names) == ["micro_batch_size"]  # swapped
    assert one_edit_from("Learning-Rate", names) == ["learning_rate"]  # case and - for _ are no edit
    assert one_edit_from("tl", names) == ["trl", "rl"]  # a dropped letter is likelier than a changed one
    assert one_edit_from("lora_rank", names) == [] and one_edit_from("learn_rate", names) == []
