"""Golden tokenization of each preference format, as TRL's DPO trainer receives it: where the
prompt ends and the chosen / rejected completions (the tokens that carry the loss) begin."""

import pytest
from trl import DPOConfig, DPOTrainer

from axo.data.prepare import prepare
from axo.errors import AxoError
from axo.model.loader import load_model
from axo.model.tokenizer import load_tokenizer

CHATML_PROMPT = "<|im_start|>system\nSort.<|im_end|>\n<|im_start|>user\n3 1 2<|im_end|>\n<|im_start|>assistant\n"
LLAMA3_PROMPT = ("<s><|start_header_id|>system<|end_header_id|>\n\nSort.<|eot_id|><|start_header_id|>user"
                 "<|end_header_id|>\n\n3 1 2<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
ROWS = {
    "chat_template.default": {"messages": [{"role": "system", "content": "Sort."}, {"role": "user", "content": "3 1 2"}],
                              "chosen": {"role": "assistant", "content": "1 2 3"},
                              "rejected": {"role": "assistant", "content": "3 2 1"}},
    "chatml.intel": {"system": "Sort.", "question": "3 1 2", "chosen": "1 2 3", "rejected": "3 2 1"},
    "chatml.prompt_pairs": {"system": "Sort.", "prompt": "3 1 2", "chosen": "1 2 3", "rejected": "3 2 1"},
    "chatml.argilla": {"system": "Sort.", "instruction": "3 1 2", "chosen_response": "1 2 3",
                       "rejected_response": "3 2 1"},
    "llama3.prompt_pairs": {"system": "Sort.", "prompt": "3 1 2", "chosen": "1 2 3", "rejected": "3 2 1"},
}


def tokenized(make_config, tmp_path, ds_type, row, **keys):
    import json

    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(row) + "\n")
    top = {} if isinstance(ds_type, dict) or template_of_type(ds_type) else {"chat_template": "chatml"}
    # the tiny vocabulary spells llama3's markers out in many tokens: room for them
    cfg = make_config(rl="dpo", datasets=[{"path": str(path), "type": ds_type, **keys}], sequence_len=512, **top)
    tokenizer = load_tokenizer(cfg)
    train = prepare(cfg, tokenizer).train  # also puts the dataset's template on the tokenizer, for TRL
    trainer = DPOTrainer(model=load_model(cfg, "fp32", tokenizer), ref_model=load_model(cfg, "fp32", tokenizer),
                         args=DPOConfig(output_dir=str(tmp_path / "o"), report_to="none", use_cpu=True),
                         train_dataset=train, processing_class=tokenizer)
    first = trainer.train_dataset[0]
    return [tokenizer.decode(first[k]) for k in ("prompt_ids", "chosen_ids", "rejected_ids")]


def template_of_type(ds_type: str) -> bool:
    return ds_type.split(".")[0] in ("chatml", "llama3")


@pytest.mark.parametrize("ds_type", list(ROWS))
def test_prompt_chosen_rejected_boundaries(make_config, tmp_path, ds_type):
    prompt, chosen, rejected = tokenized(make_config, tmp_path, ds_type, ROWS[ds_type])
    if ds_type.startswith("llama3"):
        assert (prompt, chosen, rejected) == (LLAMA3_PROMPT, "1 2 3<|eot_id|>", "3 2 1<|eot_id|>")
    else:  # the completion is the answer and its end of turn, as the template writes it
        assert (prompt, chosen, rejected) == (CHATML_PROMPT, "1 2 3<|im_end|>\n", "3 2 1<|im_end|>\n")


def test_field_mappings_and_bad_rows(make_config, tmp_path):
    row = {"conv": [{"from": "human", "value": "3 1 2"}], "good": "1 2 3", "bad": "3 2 1"}
    prompt, chosen, _ = tokenized(make_config, tmp_path, "chat_template.default", row, field_messages="conv",
                                  field_chosen="good", field_rejected="bad",
                                  message_property_mappings={"role": "from", "content": "value"})
    assert prompt.endswith("user\n3 1 2<|im_end|>\n<|im_start|>assistant\n") and chosen == "1 2 3<|im_end|>\n"
    with pytest.raises(AxoError, match=r"row 1: field 'chosen' must be the answer's text"):
        tokenized(make_config, tmp_path, "chat_template.default", {**ROWS["chat_template.default"], "chosen": 5})


def test_user_defined_preference_rows_are_plain_text(make_config, tmp_path):
    fmt = {"field_prompt": "q", "field_chosen": "good", "field_rejected": "bad",
           "prompt_format": "Q: {prompt}\nA: ", "chosen_format": "{chosen}", "rejected_format": "{rejected}"}
    prompt, chosen, rejected = tokenized(make_config, tmp_path, fmt, {"q": "3 1 2", "good": "1 2 3", "bad": "3 2 1"})
    assert (prompt, chosen, rejected) == ("<s>Q: 3 1 2\nA: ", "1 2 3</s>", "3 2 1</s>")


def test_max_prompt_len_drops_long_prompts(make_config, tmp_path):
    import json

    path = tmp_path / "rows.jsonl"
    long = {**ROWS["chatml.prompt_pairs"], "prompt": "9 " * 80}
    path.write_text(json.dumps(ROWS["chatml.prompt_pairs"]) + "\n" + json.dumps(long) + "\n")
    cfg = make_config(rl="dpo", datasets=[{"path": str(path), "type": "chatml.prompt_pairs"}], max_prompt_len=100)
    data = prepare(cfg, load_tokenizer(cfg))
    assert len(data.train) == 1 and data.train[0]["prompt"][-1]["content"] == "3 1 2"
    assert data.stats[0]["dropped_long_prompt"] == 1 and data.stats[0]["prompt_len_max"] <= 100


def test_kto_and_bradley_terry_rows_as_trl_tokenizes_them(make_config, tmp_path):
    import json

    from trl import KTOConfig, KTOTrainer, RewardConfig, RewardTrainer

    kto = tmp_path / "kto.jsonl"
    kto.write_text(json.dumps({"prompt": "3 1 2", "completion": "1 2 3", "label": True}) + "\n"
                   + json.dumps({"prompt": "3 1 2", "completion": "3 2 1", "label": False}) + "\n")
    cfg = make_config(rl="kto", chat_template="chatml", datasets=[{"path": str(kto), "type": "kto"}])
    tokenizer = load_tokenizer(cfg)
    train = prepare(cfg, tokenizer).train
    trainer = KTOTrainer(model=load_model(cfg, "fp32", tokenizer), ref_model=load_model(cfg, "fp32", tokenizer),
                         args=KTOConfig(output_dir=str(tmp_path / "k"), report_to="none", use_cpu=True,
                                        train_sampling_strategy="sequential"),
                         train_dataset=train, processing_class=tokenizer)
    good = next(r for r in trainer.train_dataset if r["label"])
    assert tokenizer.decode(good["prompt_ids"]) == "<|im_start|>user\n3 1 2<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.decode(good["completion_ids"]) == "1 2 3<|im_end|>\n"  # the tokens KTO's loss reads

    pairs = tmp_path / "bt.jsonl"
    pairs.write_text(json.dumps({"messages": [{"role": "user", "content": "3 1 2"}], "chosen": "1 2 3",
                                 "rejected": "3 2 1"}) + "\n")
    cfg = make_config(reward_model=True, model_type="AutoModelForSequenceClassification", num_labels=1,
                      chat_template="chatml", datasets=[{"path": str(pairs), "type": "bradley_terry.chat_template"}])
    tokenizer = load_tokenizer(cfg)
    train = prepare(cfg, tokenizer).train
    trainer = RewardTrainer(model=load_model(cfg, "fp32", tokenizer), train_dataset=train, processing_class=tokenizer,
                            args=RewardConfig(output_dir=str(tmp_path / "r"), report_to="none", use_cpu=True))
    row = trainer.train_dataset[0]
    prompt = "<|im_start|>user\n3 1 2<|im_end|>\n<|im_start|>assistant\n"
    # whole conversations; the score is read at the last token of each
    assert tokenizer.decode(row["chosen_ids"]) == prompt + "1 2 3<|im_end|>\n"
    assert tokenizer.decode(row["rejected_ids"]) == prompt + "3 2 1<|im_end|>\n"
