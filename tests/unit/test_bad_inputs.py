"""Bad input gets an error that names the file, the 1-based line or row and the field, and the fix;
never a traceback from a library."""

import json

import pytest

from axo.config import load
from axo.data.prepare import prepare
from axo.errors import AxoError, ConfigError
from axo.model.tokenizer import load_tokenizer


def test_a_key_set_twice_names_both_lines(tmp_path, caplog):
    """YAML keeps the second value, and so did Axolotl: axo uses it too and says so, naming both lines and
    values; with `strict: true` it is an error. The same value twice changes nothing and is not reported."""
    path = tmp_path / "cfg.yml"
    text = ("base_model: m\nbase_model: n\ndatasets:\n  - path: d.jsonl\n    type: alpaca\n    type: completion\n"
            "seed: 1\nseed: 1\n")
    path.write_text(text)
    with caplog.at_level("WARNING", logger="axo"):
        cfg = load(path)
    assert cfg.model.base_model == "n" and cfg.data.datasets[0].type == "completion"
    said = ["`base_model` (line 1, again line 2): set twice, to `m` then `n`; `n` is used, as YAML (and so Axolotl) "
            "reads it. Fix: keep one",
            "`datasets[0].type` (line 5, again line 6): set twice, to `alpaca` then `completion`; `completion` is used"]
    assert all(s in caplog.text for s in said) and "`seed`" not in caplog.text
    path.write_text(text + "strict: true\n")
    with pytest.raises(ConfigError) as err:
        load(path)
    assert [p[:60] for p in err.value.problems] == [s[:60] for s in said]
    assert str(path) in str(err.value)


@pytest.mark.parametrize("content,expected", [
    (b'{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": \n',
     r"could not read '.*rows.jsonl' as json: line 2: not valid JSON \(Expecting value at column 32\)"),
    (b"", r"'.*rows.jsonl' is empty"),
    (b'{"instruction": "a", "output": "b"}\n{"instruction": "a\xff", "output": "b"}\n',
     r"'.*rows.jsonl' line 2, column 19: not UTF-8 \(byte 0xff\)"),
], ids=["malformed-json-line", "empty-file", "invalid-utf8"])
def test_a_broken_data_file_names_the_line(make_config, tmp_path, content, expected):
    rows = tmp_path / "rows.jsonl"
    rows.write_bytes(content)
    cfg = make_config(datasets=[{"path": str(rows), "type": "alpaca"}])
    with pytest.raises(AxoError, match=rf"`datasets\[0\].path`: {expected}"):
        prepare(cfg, load_tokenizer(cfg))


def test_a_template_that_refuses_a_conversation_names_the_row(make_config, tmp_path):
    rows = tmp_path / "chat.jsonl"
    good = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    bad = {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}
    rows.write_text("".join(json.dumps(r) + "\n" for r in (good, bad)))
    strict = ("{%- for m in messages %}{%- if (m.role == 'user') != (loop.index0 % 2 == 0) %}"
              "{{- raise_exception('roles must alternate user/assistant') }}{%- endif %}"
              "{{- m.role + ': ' + m.content + '\\n' }}{%- endfor %}")
    cfg = make_config(datasets=[{"path": str(rows), "type": "chat_template"}], chat_template="jinja",
                      chat_template_jinja=strict)
    with pytest.raises(AxoError, match=r"row 2: field 'messages' is refused by the chat template: roles must "
                                       r"alternate user/assistant"):
        prepare(cfg, load_tokenizer(cfg))
    kept = prepare(make_config(datasets=[{"path": str(rows), "type": "chat_template"}], chat_template="jinja",
                               chat_template_jinja=strict, skip_bad_rows=True), load_tokenizer(cfg))
    assert kept.stats[0]["skipped_bad"] == 1 and len(kept.train) == 1


def test_model_folders_that_cannot_load_say_why(make_config, tmp_path, tiny_model):
    from axo.model.loader import load_model
    from axo.model.preflight import resolve_precision

    with pytest.raises(AxoError, match=r"`base_model`: the folder '/no/such/model' does not exist"):
        load_tokenizer(make_config(base_model="/no/such/model"))
    weights_only = tmp_path / "weights-only"
    weights_only.mkdir()
    for name in ("config.json", "model.safetensors"):
        (weights_only / name).write_bytes((tiny_model / name).read_bytes())
    with pytest.raises(AxoError, match=r"`base_model`: could not load .*weights-only.* \(a local folder\)"):
        load_tokenizer(make_config(base_model=str(weights_only)))
    unknown = tmp_path / "unknown-type"
    unknown.mkdir()
    config = json.loads((tiny_model / "config.json").read_text())
    (unknown / "config.json").write_text(json.dumps({**config, "model_type": "not_a_real_arch"}))
    cfg = make_config(base_model=str(unknown))
    with pytest.raises(AxoError, match=r"(?s)`base_model`: could not load .*unknown-type.*trust_remote_code"):
        load_model(cfg, resolve_precision(cfg.model))


def test_an_unwritable_output_dir_stops_before_any_work(make_config, tmp_path):
    from axo.train.sft import train

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(AxoError, match=r"`output_dir` '.*a-file/out' cannot be written"):
        train(make_config(output_dir=str(blocker / "out")))


def test_a_huge_row_is_judged_by_its_size_before_tokenizing(make_config, tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"instruction": "a", "output": "b"}) + "\n"
                    + json.dumps({"instruction": "long", "output": "x " * 500_000}) + "\n")
    cfg = make_config(datasets=[{"path": str(rows), "type": "alpaca"}], sequence_len=128)
    data = prepare(cfg, load_tokenizer(cfg))
    assert data.stats[0]["dropped_too_long"] == 1 and len(data.train) == 1
    strict = make_config(datasets=[{"path": str(rows), "type": "alpaca"}], sequence_len=128,
                         excess_length_strategy="raise")
    with pytest.raises(AxoError, match=r"row 2: more than 8192 characters, more than sequence_len=128 tokens can hold"):
        prepare(strict, load_tokenizer(strict))
