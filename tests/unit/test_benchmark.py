"""lm-eval's tasks as axo reads them: harness names pass through, task YAML files name their task and
their folder; missing or malformed files are config errors naming the entry."""

import pytest

from axo.errors import AxoError, ConfigError
from axo.infer.benchmark import _metric_name, table, task_names


def test_task_files_name_their_task_and_folder(tmp_path):
    (tmp_path / "mine.yaml").write_text("task: my_task\ndataset_path: json\n")
    names, folders = task_names(["hellaswag", str(tmp_path / "mine.yaml")])
    assert names == ["hellaswag", "my_task"] and folders == [str(tmp_path.resolve())]
    (tmp_path / "none.yaml").write_text("dataset_path: json\n")
    with pytest.raises(AxoError, match="has no `task: <name>` line"):
        task_names([str(tmp_path / "none.yaml")])


def test_a_missing_task_file_is_a_config_error(make_config):
    with pytest.raises(ConfigError, match=r"`lm_eval_tasks\[0\]`: the task file 'nowhere.yaml' does not exist"):
        make_config(lm_eval_tasks=["nowhere.yaml"])


def test_the_table_lists_every_score():
    lines = table({"sort_digits": {"exact_match": 0.98}, "other": {"acc": 0.5, "acc_norm": 0.25}}).splitlines()
    assert lines[0].split() == ["task", "metric", "score"]
    assert [line.split() for line in lines[2:]] == [["sort_digits", "exact_match", "0.9800"],
                                                    ["other", "acc", "0.5000"], ["other", "acc_norm", "0.2500"]]


def test_metric_names_keep_a_filter_only_where_there_is_one():
    assert _metric_name("exact_match,none") == "exact_match"
    assert _metric_name("exact_match,flexible-extract") == "exact_match (flexible-extract)"
