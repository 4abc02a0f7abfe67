"""Sources, mixing, splits, deduplication, the prepared-data cache, and multi-process waiting."""

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from axo.data.collator import Collator
from axo.data.prepare import prepare
from axo.data.tokenize import IGNORE
from axo.errors import AxoError
from axo.model.tokenizer import load_tokenizer

ROW = {"instruction": "Sort the digits: 3 1 2", "input": "", "output": "1 2 3"}


@pytest.fixture
def tokenizer(make_config):
    return load_tokenizer(make_config())


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def rows_with(n, start=0):
    return [{**ROW, "output": str(i)} for i in range(start, start + n)]


def test_pad_equal_to_eos_does_not_mask_eos(make_config, tokenizer):
    assert tokenizer.pad_token_id == tokenizer.eos_token_id  # the tiny tokenizer has no pad/unk
    short, long = (r for r in prepare(make_config(), tokenizer).train.select(range(2)))
    batch = Collator(tokenizer.pad_token_id)([short, long])
    for i, row in enumerate((short, long)):
        n = len(row["input_ids"])
        assert batch["labels"][i, n - 1] == tokenizer.eos_token_id  # the trained EOS survives padding
        assert (batch["labels"][i, n:] == IGNORE).all() and batch["attention_mask"][i].sum() == n
        assert torch.equal(batch["input_ids"][i, :n], torch.tensor(row["input_ids"]))


@pytest.mark.parametrize("ext", ["jsonl", "parquet", "csv", "arrow"])
def test_local_file_formats(tmp_path, make_config, tokenizer, ext):
    from datasets import Dataset

    data = Dataset.from_list(rows_with(4))
    path = tmp_path / f"d.{ext}"
    {"jsonl": lambda p: data.to_json(p), "parquet": data.to_parquet, "csv": data.to_csv,
     "arrow": lambda p: _write_arrow(data, p)}[ext](str(path))
    assert len(prepare(make_config(datasets=[{"path": str(path)} | {"type": "alpaca"}]), tokenizer).train) == 4


def _write_arrow(data, path):
    import pyarrow as pa

    with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, data.data.schema) as writer:
        writer.write_table(data.data.table)


def test_text_files_folder_globs_and_fsspec_uri(tmp_path, make_config, tokenizer):
    (tmp_path / "a.txt").write_text("one line\nanother line\n")
    txt = prepare(make_config(datasets=[{"path": str(tmp_path / "a.txt"), "type": "completion"}]), tokenizer)
    assert len(txt.train) == 2
    folder = tmp_path / "folder"
    folder.mkdir()
    write_rows(folder / "part1.jsonl", rows_with(3))
    write_rows(folder / "part2.jsonl", rows_with(2, 3))
    write_rows(folder / "skip.json", rows_with(7))
    globbed = prepare(make_config(datasets=[{"path": str(folder), "type": "alpaca", "data_files": "part*.jsonl"}]),
                      tokenizer)
    assert len(globbed.train) == 5
    uri = (folder / "part1.jsonl").as_uri()  # file:// goes through fsspec like s3:// or gs://
    assert len(prepare(make_config(datasets=[{"path": uri, "type": "alpaca"}]), tokenizer).train) == 3


def test_offline_hub_dataset_error(make_config, tokenizer):
    with pytest.raises(AxoError, match=r"`datasets\[0\].path`: could not load 'someone/no-such-dataset'"):
        prepare(make_config(datasets=[{"path": "someone/no-such-dataset", "type": "alpaca"}]), tokenizer)


def test_mixing_shuffling_and_val_split(tmp_path, make_config, tokenizer):
    a = write_rows(tmp_path / "a.jsonl", rows_with(10))
    b = write_rows(tmp_path / "b.jsonl", rows_with(10, 100))
    cfg = make_config(datasets=[{"path": str(a), "type": "alpaca"}, {"path": str(b), "type": "alpaca"}],
                      val_set_size=0.25)
    out = prepare(cfg, tokenizer)
    assert len(out.train) == 15 and len(out.eval) == 5
    unshuffled = prepare(make_config(datasets=cfg.to_flat()["datasets"], shuffle_merged_datasets=False), tokenizer)
    answers = [tokenizer.decode([t for t in r if t != IGNORE]) for r in unshuffled.train["labels"]]
    assert answers[:2] == ["0</s>", "1</s>"] and answers[10] == "100</s>"  # in order when not shuffled
    assert [s["dataset"] for s in out.stats] == ["datasets[0]", "datasets[1]"]


def test_exact_deduplication(tmp_path, make_config, tokenizer):
    train = write_rows(tmp_path / "t.jsonl", rows_with(4) + rows_with(2))  # 2 repeats
    test = write_rows(tmp_path / "e.jsonl", rows_with(3, 2))  # rows 2, 3 also in training
    cfg = make_config(datasets=[{"path": str(train), "type": "alpaca"}],
                      test_datasets=[{"path": str(test), "type": "alpaca"}], dataset_exact_deduplication=True)
    out = prepare(cfg, tokenizer)
    assert len(out.train) == 4 and len(out.eval) == 1
    assert out.stats[-1] == {"dataset": "deduplication", "removed": {"train": 2, "eval": 2}}


def test_statistics(tmp_path, make_config, tokenizer):
    rows = rows_with(3) + [{**ROW, "output": "9 " * 60}, {**ROW, "output": None}]
    data = write_rows(tmp_path / "d.jsonl", rows)
    out = prepare(make_config(datasets=[{"path": str(data), "type": "alpaca"}], skip_bad_rows=True), tokenizer)
    [stats] = out.stats
    assert stats["rows_in"] == 5 and stats["rows_out"] == 3
    assert stats["dropped_too_long"] == 1 and stats["skipped_bad"] == 1
    assert stats["trained_tokens"] == 6  # "0</s>", "1</s>", "2</s>"
    assert stats["tokens"] == sum(len(r) for r in out.train["input_ids"])
    assert stats["len_p50"] <= stats["len_p95"] <= stats["len_max"]


def test_empty_after_filtering_is_a_clear_error(tmp_path, make_config, tokenizer):
    data = write_rows(tmp_path / "d.jsonl", [ROW])
    with pytest.raises(AxoError, match="no rows left after filtering: 1 too long of 1"):
        prepare(make_config(datasets=[{"path": str(data), "type": "alpaca"}], sequence_len=8), tokenizer)


def test_cache_is_reused_and_invalidated(tmp_path, make_config, tokenizer):
    data = write_rows(tmp_path / "d.jsonl", [ROW] * 4)
    keys = {"datasets": [{"path": str(data), "type": "alpaca"}], "dataset_prepared_path": str(tmp_path / "cache")}
    first = prepare(make_config(**keys), tokenizer)
    again = prepare(make_config(**keys), tokenizer)
    assert not first.cache_hit and again.cache_hit
    assert again.train["input_ids"] == first.train["input_ids"]
    assert not prepare(make_config(**keys, sequence_len=100), tokenizer).cache_hit
    assert not prepare(make_config(**keys, train_on_inputs=True), tokenizer).cache_hit
    tokenizer.add_tokens(["<|new|>"], special_tokens=True)
    assert not prepare(make_config(**keys), tokenizer).cache_hit  # the tokenizer changed
    write_rows(data, [ROW] * 5)  # same path, new content
    changed = prepare(make_config(**keys), tokenizer)
    assert not changed.cache_hit and len(changed.train) == 5
    assert not list((tmp_path / "cache").glob("*.tmp-*"))


def test_cache_key_includes_the_chat_template(tmp_path, make_config, tokenizer):
    data = write_rows(tmp_path / "c.jsonl", [{"messages": [{"role": "user", "content": "a"},
                                                           {"role": "assistant", "content": "b"}]}])
    keys = {"datasets": [{"path": str(data), "type": "chat_template"}], "dataset_prepared_path": str(tmp_path / "c")}
    assert not prepare(make_config(**keys, chat_template="chatml"), tokenizer).cache_hit
    assert prepare(make_config(**keys, chat_template="chatml"), tokenizer).cache_hit
    assert not prepare(make_config(**keys, chat_template="llama3"), tokenizer).cache_hit


WAITER = """
import os, sys
sys.path.insert(0, {tests!r})
os.environ["LOCAL_RANK"] = "1"
from axo.config import validate
from axo.data.prepare import prepare
from axo.logs import setup_logging
from axo.model.tokenizer import load_tokenizer
setup_logging()
cfg = validate({raw!r})
out = prepare(cfg, load_tokenizer(cfg))
print("rows", len(out.train), "hit", out.cache_hit)
"""


def test_other_ranks_wait_for_local_rank_zero(tmp_path, make_config, tokenizer):
    """Rank 0 starts building only once the waiter has said it is waiting, so the waiting path runs
    whatever the machine's load (no sleep decides the order)."""
    data = write_rows(tmp_path / "d.jsonl", rows_with(6))
    cfg = make_config(datasets=[{"path": str(data), "type": "alpaca"}], dataset_prepared_path=str(tmp_path / "c"))
    code = WAITER.format(tests=os.path.dirname(os.path.dirname(__file__)), raw=cfg.to_flat())
    log = tmp_path / "waiter.log"
    with open(log, "w") as err:
        waiter = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=err, text=True)
    assert _wait_for_line(log, waiter, "Waiting for local rank 0 to prepare the data"), log.read_text()[-2000:]
    assert waiter.poll() is None  # still polling: nothing to read yet
    assert not prepare(cfg, tokenizer).cache_hit  # rank 0 (this process) builds it
    out, _ = waiter.communicate(timeout=600)
    assert waiter.returncode == 0, log.read_text()[-2000:]
    assert out.startswith("rows 6 hit False")  # the waiter loaded rank 0's cache and did no work
    said = log.read_text()
    assert "Local rank 1 read the tokenized data from" in said and "Local rank 1 tokenized" not in said


def _wait_for_line(log, process, text: str, timeout: float = 600) -> bool:
    """Until the process has written `text` to its log; False if it exits first or after `timeout`
    (a guard against a hang, not a guess at how long anything takes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def test_shards_of_an_entry_split_its_rows(tmp_path, make_config, tokenizer):
    """`shards: 2` with `shards_idx` 0 and 1 train on the two halves of the entry's rows (after a shuffle
    seeded by `seed`, as Axolotl 0.19 shards): disjoint, together every row."""
    data = write_rows(tmp_path / "d.jsonl", rows_with(10))

    def outputs(index):
        cfg = make_config(datasets=[{"path": str(data), "type": "alpaca", "shards": 2, "shards_idx": index}],
                          shuffle_merged_datasets=False, dataset_prepared_path=str(tmp_path / f"c{index}"))
        return {tokenizer.decode(r) for r in prepare(cfg, tokenizer).train["input_ids"]}

    first, second = outputs(0), outputs(1)
    assert len(first) == len(second) == 5 and not first & second
    with pytest.raises(Exception, match="picks a shard of `shards`"):
        make_config(datasets=[{"path": str(data), "type": "alpaca", "shards": 2, "shards_idx": 2}])
