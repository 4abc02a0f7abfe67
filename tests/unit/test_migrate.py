"""`axo migrate`: the config in today's spelling, comments kept, and nothing else changed: the result
loads into the very config the original does (so prepares the same rows and trains the same), and
passes `strict: true`."""

import pytest

from axo.config import load
from axo.config.migrate import migrate
from axo.errors import ConfigError

OLD = """\
# written for Axolotl 0.4
base_model: {model}   # the tiny one
datasets:
  - path: {data}
    type: alpaca
    field_instruction: question   # no release read it here
  - train_on_split: train
    path: {data}
    type: alpaca
eval_table_max_new_tokens: 16
hub_repo: me/model
learning_rate: 0.001
sequence_len: 128
micro_batch_size: 4
trl:
  vllm:
    host: localhost
learning_rate: 0.003
max_steps: 3
seed: 0
"""
NEW = """\
# written for Axolotl 0.4
base_model: {model}   # the tiny one
datasets:
  - path: {data}
    type: alpaca
  - split: train
    path: {data}
    type: alpaca
eval_max_new_tokens: 16
sequence_len: 128
micro_batch_size: 4
trl: {{}}
learning_rate: 0.003
max_steps: 3
seed: 0
"""


def write(tmp_path, text, **fill):
    path = tmp_path / "old.yml"
    path.write_text(text.format(**fill))
    return path


def test_migration_renames_removes_and_keeps_comments(tmp_path, tiny_model, alpaca_file):
    fill = {"model": tiny_model, "data": alpaca_file}
    path = write(tmp_path, OLD, **fill)
    done = migrate(path)
    assert done.text == NEW.format(**fill)
    assert [c.split(":")[0] for c in done.changes] == [  # in the file's order
        "removed `datasets[0].field_instruction`", "`datasets[1].train_on_split` -> `split`",
        "`eval_table_max_new_tokens` -> `eval_max_new_tokens`", "removed `hub_repo`",
        "removed the first `learning_rate`", "removed `trl.vllm`"]
    migrated = tmp_path / "new.yml"
    migrated.write_text(done.text + "strict: true\n")  # it is today's spelling: strict accepts it
    assert load(migrated).to_flat() == {**load(path).to_flat()}
    with pytest.raises(ConfigError):  # the original is not
        load(path, ["--strict"])


def test_the_migrated_config_prepares_the_same_rows_and_trains_the_same(tmp_path, tiny_model, alpaca_file):
    from axo.data.chat import load_processing
    from axo.data.prepare import prepare
    from axo.train.sft import train
    from conftest import read_log_history

    fill = {"model": tiny_model, "data": alpaca_file}
    runs = {}
    for name, text in (("old", OLD.format(**fill)), ("new", migrate(write(tmp_path, OLD, **fill)).text)):
        path = tmp_path / f"{name}.yml"
        path.write_text(text + f"output_dir: {tmp_path / name}\nlogging_steps: 1\nsave_steps: 100\n")
        cfg = load(path)
        text_setup = load_processing(cfg)
        rows = prepare(cfg, text_setup.tokenizer, text_setup.chat).train.to_list()
        train(cfg)
        runs[name] = rows, [e["loss"] for e in read_log_history(cfg.train.output_dir) if "loss" in e]
    assert runs["new"][0] == runs["old"][0] and len(runs["old"][0]) == 128
    assert runs["new"][1] == runs["old"][1] and len(runs["old"][1]) == 3


def test_a_config_that_does_not_load_is_not_migrated(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("base_model: m\ndatasets:\n  - path: d.jsonl\n    type: alpaca\nlora_rr: 8\n")
    with pytest.raises(ConfigError, match="did you mean `lora_r`"):
        migrate(path)


def test_the_first_key_of_a_list_item_leaves_its_dash_to_the_next(tmp_path):
    path = tmp_path / "c.yml"
    path.write_text("base_model: m\ndatasets:\n  - path: d.jsonl\n    type: alpaca\ntest_datasets:\n"
                    "  - mystery: 1\n    path: e.jsonl\n    type: alpaca\n")
    assert migrate(path).text.endswith("test_datasets:\n  - path: e.jsonl\n    type: alpaca\n")
