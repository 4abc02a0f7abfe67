"""`tokenizer_use_mistral_common` on Mistral's real tekken vocabulary (the file the mistral-common
wheel ships): axo trains with the fast tokenizer transformers builds from it and the template
mistral-common writes, and proves at load that they encode conversations exactly as mistral-common
does; label masks cover exactly each answer and its end token."""

import shutil
from pathlib import Path

import pytest

from axo.data.chat import load_processing
from axo.errors import AxoError
from unit.data_helpers import tokenize, trained_runs

CHAT = [{"messages": [{"role": "user", "content": "Capital of France? "}, {"role": "assistant", "content": "Paris is the capital"},
                      {"role": "user", "content": "And of Italy?"}, {"role": "assistant", "content": "Rome, ünï."}]},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of Spain?"},
                      {"role": "assistant", "content": "Madrid"}]}]


@pytest.fixture(scope="module")
def tekken_folder(tmp_path_factory) -> Path:
    import mistral_common

    folder = tmp_path_factory.mktemp("tekken")
    shutil.copy(Path(mistral_common.__file__).parent / "data" / "tekken_240718.json", folder / "tekken.json")
    return folder


def config(make_config, folder, **keys):
    return make_config(tokenizer_config=str(folder), tokenizer_use_mistral_common=True,
                       datasets=[{"path": "chat.jsonl", "type": "chat_template"}], **keys)


def test_mistral_common_tokenizer_trains_exactly_the_answers(make_config, tekken_folder, caplog):
    from axo.model.tokenizer import mistral_reference

    cfg = config(make_config, tekken_folder)
    with caplog.at_level("INFO", logger="axo"):
        text = load_processing(cfg)
    assert "encode conversations exactly as mistral-common does" in caplog.text
    rows = tokenize(cfg, text.tokenizer, CHAT)
    reference = mistral_reference(cfg)
    for row, chat in zip(rows, CHAT):  # the ids mistral-common itself gives each conversation
        assert row["input_ids"] == list(reference.apply_chat_template(chat["messages"], tokenize=True,
                                                                      return_dict=False))
    assert trained_runs(text.tokenizer, rows[0]) == ["Paris is the capital</s>", "Rome, ünï.</s>"]
    assert trained_runs(text.tokenizer, rows[1]) == ["Madrid</s>"]


def test_a_template_that_encodes_otherwise_is_refused(make_config, tekken_folder):
    with pytest.raises(AxoError, match="differently from mistral-common, from token"):
        load_processing(config(make_config, tekken_folder, chat_template="chatml"))


def test_a_folder_without_tekken_is_an_error(make_config, tiny_model):
    with pytest.raises(AxoError, match="has no tekken.json"):
        load_processing(config(make_config, tiny_model))


def test_a_system_turn_that_moves_is_a_row_error(make_config, tekken_folder):
    """Mistral's template writes the system text into the last user turn, so with two turns it moves
    as the conversation grows: the turns cannot be told apart by rendering, and the row says so."""
    cfg = config(make_config, tekken_folder)
    text = load_processing(cfg)
    two_turns = {"messages": [{"role": "system", "content": "Be brief."}, *CHAT[0]["messages"]]}
    with pytest.raises(AxoError, match="row 1: field 'messages'.*differently from the whole"):
        tokenize(cfg, text.tokenizer, [two_turns])
