"""Golden tests: for hand-written rows of each format, exactly the intended text is trained."""

import pytest

from axo.data.formats import alpaca
from axo.errors import AxoError
from axo.model.tokenizer import load_tokenizer
from unit.data_helpers import text_of, tokenize, trained_runs

ROW = {"instruction": "Sort the digits: 3 1 2", "input": "", "output": "1 2 3"}


@pytest.fixture
def tokenizer(make_config):
    return load_tokenizer(make_config())


def one(cfg, tokenizer, row, **kw):
    [out] = tokenize(cfg, tokenizer, [row], **kw)
    return out


def test_alpaca_trains_only_response_and_eos(make_config, tokenizer):
    row = one(make_config(), tokenizer, ROW)
    assert trained_runs(tokenizer, row) == ["1 2 3</s>"]
    assert text_of(tokenizer, row) == "<s>" + alpaca.build_prompt("Sort the digits: 3 1 2") + "1 2 3</s>"
    assert row["input_ids"][0] == tokenizer.bos_token_id and row["status"] == "ok"


def test_alpaca_with_input_and_system(make_config, tokenizer):
    row = one(make_config(), tokenizer, {**ROW, "input": "3 1 2", "system": "You sort."})
    text = text_of(tokenizer, row)
    assert text.startswith("<s>You sort.\n\n### Instruction:\n") and "### Input:\n3 1 2\n\n" in text
    assert trained_runs(tokenizer, row) == ["1 2 3</s>"]


@pytest.mark.parametrize("kind, row, text", [
    ("alpaca:chat", {**ROW, "input": "3 1 2"}, f"SYSTEM: {alpaca.PREAMBLE_INPUT}\nUSER: Sort the digits: 3 1 2\n3 1 2"
     "\nASSISTANT:"),
    ("alpaca:chat", ROW, f"SYSTEM: {alpaca.PREAMBLE}\nUSER: Sort the digits: 3 1 2\nASSISTANT:"),
    ("alpaca:phi", ROW, f"<|system|>\n{alpaca.PREAMBLE}<|end|>\n<|user|>\nSort the digits: 3 1 2<|end|>\n"
     "<|assistant|>\n"),
    ("oasst:chatml", {"INSTRUCTION": "Sort the digits: 3 1 2", "RESPONSE": "1 2 3"},
     f"<|im_start|>system\n{alpaca.PREAMBLE}<|im_end|>\n<|im_start|>user\nSort the digits: 3 1 2<|im_end|>\n"
     "<|im_start|>assistant\n"),
])
def test_axolotl_older_instruction_types(make_config, tokenizer, kind, row, text):
    """Axolotl's prompters.py text, character for character; only the answer and EOS train."""
    row = one(make_config(datasets=[{"path": "x.jsonl", "type": kind}]), tokenizer, row)
    assert text_of(tokenizer, row) == "<s>" + text + "1 2 3</s>"
    assert trained_runs(tokenizer, row) == ["1 2 3</s>"]


Q = "Sort the digits: 3 1 2"
CONCISE = ("SYSTEM: Below is an instruction from a USER that describes a task. The ASSISTANT writes a response that "
           "appropriately and concisely completes the request.\n\n\n")
CONTEXT = "SYSTEM: Use the following contextual information to concisely answer the question.\n\n"
ARTICLE = {"article": "The digits are 3 1 2.", "question": "Sorted?"}


# Axolotl's prompt strategies of the alpaca family, each with its prompter's text as Axolotl 0.19's
# prompt_strategies/ and prompters.py write it (read from its source; 0.3.0 ended the
# alpaca system texts with a blank line more).
@pytest.mark.parametrize("kind, row, text, answer", [
    ("alpaca_chat", ROW, f"SYSTEM: {alpaca.PREAMBLE}\nUSER: {Q}\nASSISTANT:", "1 2 3"),
    ("alpaca_chat.load_concise", ROW, f"{CONCISE}USER: {Q}\nASSISTANT:", "1 2 3"),
    ("alpaca_chat.load_qa", {"question": Q, "answer": "1 2 3"}, f"{CONCISE}USER: {Q}\nASSISTANT:", "1 2 3"),
    ("alpaca_chat.load_camel_ai", {"message_1": Q, "message_2": "1 2 3"}, f"{CONCISE}USER: {Q}\nASSISTANT:", "1 2 3"),
    ("alpaca_chat.load_no_prompt", ROW, f"USER: {Q}\nASSISTANT:", "1 2 3"),
    ("alpaca_instruct", ROW, f"{alpaca.PREAMBLE}\n\n### Instruction:\n{Q}\n\n### Response:\n", "1 2 3"),
    ("alpaca_instruct.load_no_prompt", {**ROW, "input": "fast"},
     f"### Instruction:\n{Q}\n\n### Input:\nfast\n\n### Response:\n", "1 2 3"),
    ("alpaca_w_system", {**ROW, "system": "You sort."}, f"SYSTEM: You sort.\nUSER: {Q}\nASSISTANT:", "1 2 3"),
    ("alpaca_w_system.load_instruct", {**ROW, "system": ""}, f"### Instruction:\n{Q}\n\n### Response:\n", "1 2 3"),
    ("alpaca_w_system.load_open_orca", {"question": Q, "response": "1 2 3", "system_prompt": "You sort."},
     f"### System:\nYou sort.\n### Human:\n{Q}\n### Assistant:\n", "1 2 3"),
    ("alpaca_w_system.load_open_orca_chatml", {"question": Q, "response": "1 2 3", "system_prompt": "You sort."},
     f"<|im_start|>system\nYou sort.<|im_end|>\n<|im_start|>user\n{Q}<|im_end|>\n<|im_start|>assistant\n", "1 2 3"),
    ("context_qa", {**ARTICLE, "answer": "1 2 3"},
     f"{CONTEXT}USER: The digits are 3 1 2.\n===\nSorted?\nASSISTANT:", "1 2 3"),
    ("context_qa.load_404", {"article": "The digits are 3 1 2.", "unanswerable_question": "Who wrote them?"},
     f"{CONTEXT}USER: The digits are 3 1 2.\n===\nWho wrote them?\nASSISTANT:", alpaca.NO_ANSWER),
    ("context_qa.load_v2", {"context": "The digits are 3 1 2.", "question": "Sorted?", "answer": "1 2 3"},
     "Context: The digits are 3 1 2.\nQuestion: Sorted?\n", "Answer: 1 2 3"),
])
def test_axolotl_prompt_strategies_of_the_alpaca_family(make_config, tokenizer, kind, row, text, answer):
    row = one(make_config(datasets=[{"path": "x.jsonl", "type": kind}], sequence_len=256), tokenizer, row)
    assert text_of(tokenizer, row) == "<s>" + text + answer + "</s>"
    assert trained_runs(tokenizer, row) == [answer + "</s>"]


def test_a_prompt_strategys_missing_column_names_it(make_config, tokenizer):
    with pytest.raises(AxoError, match="needs column\\(s\\) \\['question', 'response', 'system_prompt'\\]"):
        tokenize(make_config(datasets=[{"path": "x.jsonl", "type": "alpaca_w_system.load_open_orca"}]), tokenizer, [ROW])


def test_jeopardy_answers_with_what_is(make_config, tokenizer):
    cfg = make_config(datasets=[{"path": "x.jsonl", "type": "jeopardy"}])
    row = one(cfg, tokenizer, {"question": "It sorts.", "category": "ALGORITHMS", "answer": "quicksort"})
    assert text_of(tokenizer, row) == ("<s>" + alpaca.PREAMBLE_INPUT + "\n\n### Instruction:\nIt sorts.\n\n### Input:\n"
                                       "ALGORITHMS\n\n### Response:\nwhat is quicksort</s>")
    assert trained_runs(tokenizer, row) == ["what is quicksort</s>"]


def test_train_on_inputs_trains_everything_but_bos(make_config, tokenizer):
    row = one(make_config(train_on_inputs=True), tokenizer, ROW)
    assert row["labels"][1:] == row["input_ids"][1:] and row["labels"][0] == -100


def test_user_defined_format(make_config, tokenizer):
    fmt = {"field_instruction": "q", "field_output": "a", "format": "Q: {instruction} ({input})\nA: ",
           "no_input_format": "Q: {instruction}\nA: ", "system_prompt": "Be brief.",
           "system_format": "[{system}] "}
    cfg = make_config(datasets=[{"path": "x.jsonl", "type": fmt}])
    row = one(cfg, tokenizer, {"q": "Sort 2 1", "a": "1 2"})
    assert text_of(tokenizer, row) == "<s>[Be brief.] Q: Sort 2 1\nA: 1 2</s>"
    assert trained_runs(tokenizer, row) == ["1 2</s>"]
    row = one(cfg, tokenizer, {"q": "Sort", "input": "2 1", "a": "1 2"})
    assert text_of(tokenizer, row) == "<s>[Be brief.] Q: Sort (2 1)\nA: 1 2</s>"


def test_completion_trains_all_and_splits_long_texts(make_config, tokenizer):
    cfg = make_config(datasets=[{"path": "x", "type": "completion", "field": "body"}], sequence_len=16)
    short = one(cfg, tokenizer, {"body": "Below is an instruction"})
    assert trained_runs(tokenizer, short) == ["Below is an instruction</s>"]
    text = " ".join(str(d) for d in range(10)) * 3  # 59 characters, ~60 tokens
    chunks = tokenize(cfg, tokenizer, [{"body": text}])
    assert len(chunks) > 1 and all(c["status"] == "chunk" and c["length"] <= 16 for c in chunks)
    joined = [t for c in chunks for t in c["input_ids"]]
    assert tokenizer.decode(joined) == "<s>" + text + "</s>"  # nothing thrown away


def test_input_output_trains_exactly_labelled_segments(make_config, tokenizer):
    cfg = make_config(datasets=[{"path": "x", "type": "input_output"}])
    segments = [{"text": "Q: sort 2 1\n", "label": False}, {"text": "A: 1 2", "label": True},
                {"text": " (done)", "label": False}, {"text": "</s>", "label": True}]
    row = one(cfg, tokenizer, {"segments": segments})
    assert text_of(tokenizer, row) == "<s>Q: sort 2 1\nA: 1 2 (done)</s>"
    assert trained_runs(tokenizer, row) == ["A: 1 2", "</s>"]


def test_pretokenized_rows_are_checked_and_used(make_config, tokenizer):
    cfg = make_config(datasets=[{"path": "x"}])
    row = one(cfg, tokenizer, {"input_ids": [0, 5, 6, 7], "labels": [-100, -100, 6, 7]})
    assert row["input_ids"] == [0, 5, 6, 7] and row["labels"] == [-100, -100, 6, 7]
    assert one(cfg, tokenizer, {"input_ids": [0, 5, 6]})["labels"] == [0, 5, 6]
    with pytest.raises(AxoError, match=r"row 1: field 'labels' must be a list as long as input_ids"):
        tokenize(cfg, tokenizer, [{"input_ids": [0, 5], "labels": [5]}])
    with pytest.raises(AxoError, match=r"row 1: field 'input_ids' must be a non-empty list of token ids below"):
        tokenize(cfg, tokenizer, [{"input_ids": [0, 99999], "labels": [0, 1]}])


def test_no_type_and_no_input_ids_is_an_error(make_config, tokenizer):
    with pytest.raises(AxoError, match=r"`datasets\[0\].type` is not set.*set `type:`"):
        tokenize(make_config(datasets=[{"path": "x"}]), tokenizer, [ROW])


@pytest.mark.parametrize("strategy,status", [("drop", "too_long"), ("truncate", "truncated")])
def test_excess_length_strategies(make_config, tokenizer, strategy, status):
    prompt = len(one(make_config(), tokenizer, {**ROW, "output": ""})["input_ids"]) - 1  # without its EOS
    cfg = make_config(sequence_len=prompt + 3, excess_length_strategy=strategy)
    row = one(cfg, tokenizer, {**ROW, "output": "1 2 3 4 5 6 7 8 9"})
    assert row["status"] == status
    assert row["length"] == (0 if strategy == "drop" else prompt + 3)
    if strategy == "truncate":
        assert trained_runs(tokenizer, row) == [tokenizer.decode(row["input_ids"][prompt:])]  # the answer's start


def test_a_truncation_that_leaves_no_answer_drops_the_row(make_config, tokenizer):
    row = one(make_config(sequence_len=20, excess_length_strategy="truncate"), tokenizer, ROW)
    assert row["status"] == "untrained" and row["input_ids"] == []


def test_excess_length_raise_names_row(make_config, tokenizer):
    cfg = make_config(sequence_len=34, excess_length_strategy="raise")
    long = {**ROW, "output": "1 2 3 4 5 6 7 8 9"}
    with pytest.raises(AxoError, match=r"datasets\[0\].*row 2: \d+ tokens, more than sequence_len=34"):
        tokenize(cfg, tokenizer, [{**ROW, "instruction": "x", "output": ""}, long])


def test_min_sample_len(make_config, tokenizer):
    cfg = make_config(datasets=[{"path": "x", "type": "completion"}], min_sample_len=5)
    assert one(cfg, tokenizer, {"text": "ab"})["status"] == "too_short"


def test_bad_rows_error_or_skip(make_config, tokenizer):
    rows = [ROW, {**ROW, "output": None}, {"input": "", "output": "1"}]
    with pytest.raises(AxoError, match=r"`datasets\[0\]` \(.*\) row 2: field 'output' must be text, got missing"):
        tokenize(make_config(), tokenizer, rows)
    out = tokenize(make_config(skip_bad_rows=True), tokenizer, rows)
    assert [r["status"] for r in out] == ["ok", "bad", "bad"]
