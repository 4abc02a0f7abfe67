"""Prepared rows depend only on the run's own config, tokenizer and data: a preparation of a file
after another config prepared the same file (another tokenizer, template, sequence_len,
train_on_inputs, method, processor) equals a preparation of it alone, with datasets' global cache
(HF_DATASETS_CACHE) clean. datasets caches every step it runs under a fingerprint of that step's
inputs; a step whose output depends on more than its fingerprint says (the tokenizer, say) would be
read back from the earlier config's files."""

import json
import shutil
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from axo.data.chat import load_processing
from axo.data.prepare import prepare
from axo.model.tokenizer import load_tokenizer
from conftest import EXAMPLES
from fixtures.real_tokenizers import folder, missing
from unit.test_pipeline import METHOD_KEYS, ROWS, USER_CODE

if missing():
    pytest.fail(f"real tokenizers {missing()} are missing: run `make setup` (tests/fixtures/real_tokenizers.py)",
                pytrace=False)

CHATS = [{"messages": [{"role": "system", "content": "You are a helpful assistant."},
                       {"role": "user", "content": f"Sort the digits: {i} 3 1"},
                       {"role": "assistant", "content": " ".join(sorted(f"{i}31"))}]} for i in range(6)]


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """use(name): datasets' global cache is the folder `name` from now on (a new name: a clean cache)."""
    import datasets

    def use(name: str) -> None:
        monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / f"hf-{name}")

    return use


@pytest.fixture(scope="module")
def qwen2():
    """A real tokenizer (151k tokens, ChatML template) beside the tiny model's 1,000-token one."""
    tokenizer = AutoTokenizer.from_pretrained(folder() / "qwen2")
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    return tokenizer


def rows_of(data) -> dict:
    splits = {"train": data.train, "eval": data.eval}
    return {name: split.to_list() for name, split in splits.items() if split is not None}


def after_another(hf_cache, first, second) -> tuple[dict, dict]:
    """(second's rows prepared after first's in one datasets cache, second's rows prepared alone in a
    clean one); `first` and `second` are (config, tokenizer, ...) for `prepare`, each config with its own
    dataset_prepared_path."""
    name = Path(second[0].data.dataset_prepared_path).name
    hf_cache(f"shared-{name}")
    prepare(*first)
    after = rows_of(prepare(*second))
    hf_cache(f"clean-{name}")
    shutil.rmtree(second[0].data.dataset_prepared_path)  # else axo's own cache answers
    alone = rows_of(prepare(*second))
    assert after["train"], "nothing prepared: the comparison would prove nothing"
    return after, alone


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("change", ["tokenizer", "template", "sequence_len", "train_on_inputs", "val_set_size",
                                    "deduplication"])
def test_sft_rows_are_the_configs_own(change, make_config, qwen2, hf_cache, tmp_path):
    data = write(tmp_path / "chat.jsonl", CHATS + CHATS[:2])  # two duplicates, for deduplication

    def config(n, **keys):
        base = {"datasets": [{"path": str(data), "type": "chat_template"}], "chat_template": "chatml",
                "dataset_prepared_path": str(tmp_path / f"prepared-{n}"), "sequence_len": 256}
        return make_config(**{**base, **keys})

    tiny = load_tokenizer(config(0))
    a, b = {"tokenizer": ((config(1), tiny), (config(2), qwen2)),
            "template": ((config(1), tiny), (config(2, chat_template="llama3"), tiny)),
            "sequence_len": ((config(1), tiny), (config(2, sequence_len=114, excess_length_strategy="truncate"), tiny)),
            "train_on_inputs": ((config(1), tiny), (config(2, train_on_inputs=True), tiny)),
            "val_set_size": ((config(1, val_set_size=2), tiny), (config(2, val_set_size=2), qwen2)),
            "deduplication": ((config(1), qwen2), (config(2, dataset_exact_deduplication=True), tiny)),
            }[change]
    after, alone = after_another(hf_cache, a, b)
    assert after == alone
    if change == "tokenizer":  # the ids are the run's own tokenizer's
        assert qwen2.decode(after["train"][0]["input_ids"]).startswith("<|im_start|>system\nYou are a helpful")

METHODS = ["pairs", "kto", "grpo", "process_reward", "kd", "ebft"]
METHOD_OF = {"pairs": "dpo"}


@pytest.mark.parametrize("rows", METHODS)
def test_every_methods_rows_are_the_configs_own(rows, make_config, qwen2, hf_cache, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(USER_CODE))
    method = METHOD_OF.get(rows, rows)
    keys, ds_type, good, _, long = ROWS[rows]
    data = write(tmp_path / "rows.jsonl", [good, long, good])

    def config(n, **more):
        entry = {"path": str(data), "type": ds_type, **({"logprobs_field": "lp"} if method == "kd" else {})}
        return make_config(**{**METHOD_KEYS[method], **keys, "datasets": [entry], "sequence_len": 64,
                              "dataset_prepared_path": str(tmp_path / f"prepared-{n}"), **more})

    tiny = load_tokenizer(config(0))
    other = tiny if method == "kd" else qwen2  # (KD's teacher log-probs are the tiny vocabulary's ids)
    for first, second in [((config(1), tiny), (config(2), other)),
                          ((config(3, sequence_len=512), tiny), (config(4), tiny))]:  # the long row drops
        after, alone = after_another(hf_cache, first, second)
        assert after == alone, (rows, second[0].data.sequence_len)


def test_pretraining_rows_are_the_configs_own(make_config, qwen2, hf_cache, tmp_path):
    """Streamed pretraining text and its cached eval rows."""
    text = write(tmp_path / "text.jsonl", [{"text": f"The digits {i} 3 1 sort to {' '.join(sorted(f'{i}31'))}."}
                                           for i in range(40)])

    def config(n):
        return make_config(datasets=None, pretraining_dataset=[{"path": str(text), "type": "pretrain"}],
                           test_datasets=[{"path": str(text), "type": "completion"}], max_steps=2,
                           dataset_prepared_path=str(tmp_path / f"prepared-{n}"), sequence_len=16)

    tiny = load_tokenizer(config(0))

    def first_blocks(data, n=4):
        return [row["input_ids"] for row, _ in zip(data.train, range(n))]

    hf_cache("shared")
    prepare(config(1), tiny)
    after = prepare(config(2), qwen2)
    hf_cache("clean")
    alone = prepare(config(3), qwen2)
    assert first_blocks(after) == first_blocks(alone)
    assert after.eval.to_list() == alone.eval.to_list()


def test_multimodal_rows_are_the_configs_own(make_config, hf_cache, tmp_path):
    """The same image rows for two processors: Llava's one image token per image, Llava-Next's tiles."""
    images = tmp_path / "colours"
    shutil.copytree(EXAMPLES / "data" / "colours", images)
    rows = [json.loads(line) for line in (images / "colours.jsonl").read_text().splitlines()[:6]]
    data = write(tmp_path / "colours.jsonl",
                 [{**r, "images": [str(images / p.rsplit("/", 1)[1]) for p in r["images"]]} for r in rows])

    def setup(n, family):
        cfg = make_config(base_model=str(EXAMPLES / "tiny-multimodal" / family), processor_type="AutoProcessor",
                          datasets=[{"path": str(data), "type": "chat_template"}], sequence_len=512,
                          dataset_prepared_path=str(tmp_path / f"prepared-{n}"))
        text = load_processing(cfg)
        return cfg, text.tokenizer, text.chat, text.processor

    after, alone = after_another(hf_cache, setup(1, "llava"), setup(2, "llava_next"))
    assert after == alone



def test_preparation_writes_only_into_axos_cache(make_config, hf_cache, tmp_path):
    """datasets' global cache and the data's folder stay as they were; the working folder is removed, also
    when preparation fails."""
    (tmp_path / "data").mkdir()
    data = write(tmp_path / "data" / "chat.jsonl", CHATS)
    cfg = make_config(datasets=[{"path": str(data), "type": "chat_template"}], chat_template="chatml",
                      sequence_len=256, val_set_size=2, dataset_exact_deduplication=True,
                      dataset_prepared_path=str(tmp_path / "prepared"))
    hf_cache("global")
    prepare(cfg, load_tokenizer(cfg))
    assert not (tmp_path / "hf-global").exists() or not any((tmp_path / "hf-global").rglob("*.arrow"))
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["chat.jsonl"]
    [cache] = (tmp_path / "prepared").iterdir()  # the prepared rows, and no working folder beside them
    assert sorted(p.name for p in cache.iterdir()) == ["eval", "stats.json", "train"]
    with pytest.raises(Exception, match="no rows left"):
        prepare(make_config(**{**cfg.to_flat(), "sequence_len": 8}), load_tokenizer(cfg))
    assert not list((tmp_path / "prepared").glob("*.scratch-*"))


def test_axos_cache_key_sees_the_whole_tokenizer(make_config, tmp_path):
    """Two tokenizers with one vocabulary that split text differently (here one lowercases first) do not
    share prepared rows; a tokenizer only called with truncation on does."""
    import copy

    from tokenizers import normalizers

    data = write(tmp_path / "chat.jsonl", CHATS)
    cfg = make_config(datasets=[{"path": str(data), "type": "chat_template"}], chat_template="chatml",
                      sequence_len=256, dataset_prepared_path=str(tmp_path / "prepared"))
    tiny = load_tokenizer(cfg)
    lower = copy.deepcopy(tiny)
    lower.backend_tokenizer.normalizer = normalizers.Lowercase()
    assert lower.get_vocab() == tiny.get_vocab() and lower("Sort")["input_ids"] != tiny("Sort")["input_ids"]
    first = prepare(cfg, tiny)
    second = prepare(cfg, lower)
    assert not second.cache_hit and second.train["input_ids"] != first.train["input_ids"]
    tiny("a long text", truncation=True, max_length=2)  # leaves truncation set on the backend
    assert prepare(cfg, tiny).cache_hit
