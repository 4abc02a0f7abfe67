"""chat_template golden tests: multi-turn, every roles_to_train / train_on_eos choice, system and
tool messages, templates whose end-of-turn token differs from EOS (ChatML with eos `</s>`)."""

import pytest

from axo.config import validate
from axo.errors import AxoError, ConfigError
from axo.model.tokenizer import load_tokenizer
from unit.data_helpers import text_of, tokenize, trained_runs

SPECIAL = ["<|im_start|>", "<|im_end|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
CONVERSATION = [
    {"role": "system", "content": "Sort digits."},
    {"role": "user", "content": "3 1 2"},
    {"role": "assistant", "content": "1 2 3"},
    {"role": "user", "content": "9 8"},
    {"role": "assistant", "content": "8 9"},
]
CHATML_TEXT = ("<|im_start|>system\nSort digits.<|im_end|>\n<|im_start|>user\n3 1 2<|im_end|>\n"
               "<|im_start|>assistant\n1 2 3<|im_end|>\n<|im_start|>user\n9 8<|im_end|>\n"
               "<|im_start|>assistant\n8 9<|im_end|>\n")


@pytest.fixture
def chat(make_config):
    """(build(**dataset_keys, **top_keys) -> cfg, tokenizer with the chat special tokens)."""
    tokenizer = load_tokenizer(make_config())
    tokenizer.add_tokens(SPECIAL, special_tokens=True)

    def build(top=None, **dataset_keys):
        ds = {"path": "x.jsonl", "type": "chat_template", **dataset_keys}
        return make_config(datasets=[ds], sequence_len=512, **{"chat_template": "chatml", **(top or {})})

    return build, tokenizer


def run(cfg, tokenizer, row):
    [out] = tokenize(cfg, tokenizer, [row])
    return out


def test_chatml_multi_turn_trains_each_assistant_turn_and_its_end_of_turn(chat):
    build, tok = chat
    row = run(build(), tok, {"messages": CONVERSATION})
    assert text_of(tok, row) == CHATML_TEXT
    assert tok.eos_token == "</s>"  # differs from ChatML's <|im_end|>
    assert trained_runs(tok, row) == ["1 2 3<|im_end|>", "8 9<|im_end|>"]


def test_roles_to_train(chat):
    build, tok = chat
    row = run(build(roles_to_train=["user", "assistant"]), tok, {"messages": CONVERSATION})
    assert trained_runs(tok, row) == ["3 1 2<|im_end|>", "1 2 3<|im_end|>", "9 8<|im_end|>", "8 9<|im_end|>"]
    row = run(build(roles_to_train=["system"]), tok, {"messages": CONVERSATION})
    assert trained_runs(tok, row) == ["Sort digits.<|im_end|>"]


@pytest.mark.parametrize("policy,expected", [
    ("turn", ["1 2 3<|im_end|>", "8 9<|im_end|>"]),
    ("all", ["<|im_end|>", "<|im_end|>", "1 2 3<|im_end|>", "<|im_end|>", "8 9<|im_end|>"]),
    ("last", ["1 2 3", "8 9<|im_end|>"]),
    ("none", ["1 2 3", "8 9"]),
])
def test_train_on_eos_for_end_of_turn_tokens(chat, policy, expected):
    build, tok = chat
    # train_on_eot follows train_on_eos unless set; <|im_end|> is the end-of-turn token here
    row = run(build(train_on_eos=policy), tok, {"messages": CONVERSATION})
    assert trained_runs(tok, row) == expected


def test_train_on_eot_and_eos_separately(chat):
    """A template that writes EOS after each assistant turn, as Llama-2/Mistral ones do."""
    build, tok = chat
    jinja = ("{% for m in messages %}{% if m.role == 'user' %}[INST] {{ m.content }} [/INST]"
             "{% else %}{{ m.content }}</s>{% endif %}{% endfor %}")
    msgs = CONVERSATION[1:]
    row = run(build(top={"chat_template": "jinja", "chat_template_jinja": jinja}), tok, {"messages": msgs})
    assert text_of(tok, row) == "[INST] 3 1 2 [/INST]1 2 3</s>[INST] 9 8 [/INST]8 9</s>"
    assert trained_runs(tok, row) == ["1 2 3</s>", "8 9</s>"]
    row = run(build(top={"chat_template_jinja": jinja}, train_on_eos="none"), tok, {"messages": msgs})
    assert trained_runs(tok, row) == ["1 2 3", "8 9"]


def test_llama3_style_template(chat):
    build, tok = chat
    row = run(build(top={"chat_template": "llama3"}), tok, {"messages": CONVERSATION[:3]})
    assert text_of(tok, row) == (
        "<s><|start_header_id|>system<|end_header_id|>\n\nSort digits.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\n3 1 2<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n1 2 3<|eot_id|>")
    assert row["input_ids"][0] == tok.bos_token_id
    assert trained_runs(tok, row) == ["1 2 3<|eot_id|>"]


def test_tool_calls_and_tool_role(chat):
    build, tok = chat
    tools = [{"type": "function", "function": {"name": "sort", "parameters": {"type": "object"}}}]
    messages = [
        {"role": "user", "content": "sort 3 1"},
        {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "sort", "arguments": {"x": [3, 1]}}}]},
        {"role": "tool", "content": "[1, 3]"},
        {"role": "assistant", "content": "1 3"},
    ]
    row = run(build(), tok, {"messages": messages, "tools": tools})
    text = text_of(tok, row)
    assert text.startswith("<|im_start|>system\nYou may call these tools:\n<tools>\n")
    assert '"name": "sort"' in text and "<|im_start|>tool\n[1, 3]<|im_end|>" in text
    call = '<tool_call>\n{"name": "sort", "arguments": {"x": [3, 1]}}\n</tool_call><|im_end|>'
    assert trained_runs(tok, row) == [call, "1 3<|im_end|>"]


def test_sharegpt_rows_through_field_mapping(chat):
    build, tok = chat
    cfg = build(field_messages="conversations", message_property_mappings={"role": "from", "content": "value"},
                roles={"assistant": ["bot"]})
    conversations = [{"from": "human", "value": "3 1 2"}, {"from": "bot", "value": "1 2 3"}]
    row = run(cfg, tok, {"conversations": conversations})
    assert trained_runs(tok, row) == ["1 2 3<|im_end|>"]
    assert "<|im_start|>user\n3 1 2" in text_of(tok, row)


def test_axolotl_legacy_message_field_keys(chat):
    build, tok = chat
    cfg = build(field_messages="conversations", message_field_role="from", message_field_content="value")
    assert cfg.data.datasets[0].message_property_mappings == {"role": "from", "content": "value"}


def test_message_field_training_overrides_roles(chat):
    build, tok = chat
    msgs = [{**m, "train": m["content"] in ("9 8", "8 9") and m["role"] == "user"} for m in CONVERSATION]
    msgs[2]["train"] = None  # unset: falls back to roles_to_train
    row = run(build(message_field_training="train"), tok, {"messages": msgs})
    assert trained_runs(tok, row) == ["1 2 3<|im_end|>", "9 8<|im_end|>"]


def test_system_message_handling(chat):
    build, tok = chat
    row = run(build(top={"default_system_message": "Be exact."}), tok, {"messages": CONVERSATION[1:3]})
    assert text_of(tok, row).startswith("<|im_start|>system\nBe exact.<|im_end|>\n<|im_start|>user")
    row = run(build(drop_system_message=True), tok, {"messages": CONVERSATION[:3]})
    assert text_of(tok, row).startswith("<|im_start|>user\n3 1 2")


def test_bad_conversations_name_row_and_fix(chat):
    build, tok = chat
    with pytest.raises(AxoError, match=r"row 1: field 'messages\[1\].role' unknown role 'robot'.*roles: \{user: \[robot\]\}"):
        run(build(), tok, {"messages": [{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]})
    with pytest.raises(AxoError, match=r"row 1: field 'messages' must be a non-empty list of messages, got empty"):
        tokenize(build(), tok, [{"messages": []}])


def test_tokenizer_default_template(chat):
    build, tok = chat
    with pytest.raises(AxoError, match="`chat_template`: the tokenizer has no chat template"):
        run(build(top={"chat_template": "tokenizer_default"}), tok, {"messages": CONVERSATION})
    row = run(build(top={"chat_template": "tokenizer_default_fallback_chatml"}), tok, {"messages": CONVERSATION})
    assert text_of(tok, row) == CHATML_TEXT
    tok.chat_template = "{% for m in messages %}{{ m.role }}: {{ m.content }}<|eot_id|>{% endfor %}"
    row = run(build(top={"chat_template": "tokenizer_default"}), tok, {"messages": CONVERSATION[1:3]})
    assert trained_runs(tok, row) == ["1 2 3<|eot_id|>"]


def test_old_sharegpt_entries_read_as_chat_template(chat, make_config):
    """Axolotl's old `type: sharegpt` (gone since 0.5) becomes the chat_template entry that trains the
    same tokens: the gpt turns and their end of turn."""
    _, tokenizer = chat
    old = make_config(datasets=[{"path": "x", "type": "sharegpt", "conversation": "chatml"}], sequence_len=512)
    new = make_config(datasets=[{"path": "x", "type": "chat_template", "field_messages": "conversations",
                                 "message_property_mappings": {"role": "from", "content": "value"},
                                 "chat_template": "chatml"}], sequence_len=512)
    assert old.data.datasets[0].type == "chat_template" and old.data.datasets[0].chat_template == "chatml"
    row = {"conversations": [{"from": "human", "value": "3 1 2"}, {"from": "gpt", "value": "1 2 3"}]}
    [a], [b] = tokenize(old, tokenizer, [row]), tokenize(new, tokenizer, [row])
    assert a["input_ids"] == b["input_ids"] and a["labels"] == b["labels"]
    assert trained_runs(tokenizer, a) == ["1 2 3<|im_end|>"]
    with pytest.raises(ConfigError, match="type 'sharegpt' is replaced by chat_template"):
        validate({"base_model": "m", "datasets": [{"path": "x", "type": "sharegpt", "conversation": "vicuna_v1.1"}]})


def test_chat_keys_on_other_types_are_errors():
    with pytest.raises(ConfigError, match=r"`datasets\[0\].roles_to_train`: only applies to `type: chat_template`"):
        validate({"base_model": "m", "datasets": [{"path": "x", "type": "alpaca", "roles_to_train": ["user"]}]})


THINKING = ("{%- for m in messages %}{{- '<|im_start|>' + m.role + '\\n' }}"
            "{%- if m.reasoning_content %}{{- '<think>' + m.reasoning_content + '</think>' }}{%- endif %}"
            "{{- m.content + '<|im_end|>\\n' }}{%- endfor %}"
            "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")


def test_reasoning_traces_reach_the_template_and_train_with_the_answer(chat):
    build, tok = chat
    cfg = build(top={"chat_template": "jinja", "chat_template_jinja": THINKING}, field_thinking="thinking")
    row = run(cfg, tok, {"messages": [{"role": "user", "content": "3 1 2"},
                                      {"role": "assistant", "content": "1 2 3", "thinking": "sort them"}]})
    assert trained_runs(tok, row) == ["<think>sort them</think>1 2 3<|im_end|>"]


def test_a_model_family_template_is_the_tokenizers_own_when_it_is_of_that_family(make_config):
    from axo.data.chat import setup_chat

    cfg = make_config(chat_template="qwen3", datasets=[{"path": "x", "type": "chat_template"}])
    tokenizer = load_tokenizer(cfg)
    tokenizer.chat_template = THINKING  # a ChatML-style template, as Qwen3's is
    assert setup_chat(cfg, tokenizer).datasets[0].template == THINKING
    gemma = setup_chat(make_config(chat_template="gemma3", datasets=[{"path": "x", "type": "chat_template"}]), tokenizer)
    assert "<start_of_turn>" in gemma.datasets[0].template  # not ChatML: the family's format, written by axo


EFFORT = ("{%- for m in messages %}{{- '<|im_start|>' + m.role + '\\n' }}"
          "{%- if m.role == 'assistant' and reasoning_effort is defined %}{{- '[' + reasoning_effort + '] ' }}{%- endif %}"
          "{{- m.content + '<|im_end|>\\n' }}{%- endfor %}"
          "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")


def test_chat_template_kwargs_reach_every_rendering(chat, make_config):
    """Axolotl's `chat_template_kwargs` (reasoning_effort, enable_thinking...): the template sees them
    in SFT rows, in preference rows (TRL reads them from each row) and in GRPO's config."""
    from axo.data.chat import context, setup_chat
    from axo.data.preference import PairRows

    build, tok = chat
    top = {"chat_template": "jinja", "chat_template_jinja": EFFORT, "chat_template_kwargs": {"reasoning_effort": "low"}}
    row = run(build(top=top), tok, {"messages": CONVERSATION[1:3]})
    assert trained_runs(tok, row) == ["[low] 1 2 3<|im_end|>"]
    plain = run(build(top={**top, "chat_template_kwargs": None}), tok, {"messages": CONVERSATION[1:3]})
    assert trained_runs(tok, plain) == ["1 2 3<|im_end|>"]

    cfg = make_config(rl="dpo", datasets=[{"path": "p.jsonl", "type": "chat_template.default"}], **top)
    pairs = PairRows(cfg, context(cfg, setup_chat(cfg, tok), "datasets", 0, tok))
    pair = pairs.read({"messages": CONVERSATION[1:2], "chosen": "1 2 3", "rejected": "3 2 1"})
    assert pair["chat_template_kwargs"] == {"reasoning_effort": "low"} and "chat_template_kwargs" in pairs.columns(None)
    assert pair["chosen_len"] == len(tok("[low] 1 2 3<|im_end|>\n", add_special_tokens=False)["input_ids"])


AXOLOTL_TEMPLATE_NAMES = (  # Axolotl 0.19's list (shared/axolotl-config-keys/usage-in-axolotl-examples.md)
    "alpaca chatml mistral_v1 mistral_v2v3 mistral_v3_tekken mistral_v7_tekken gemma cohere llama3 llama3_2_vision "
    "llama4 phi_3 phi_35 deepseek_v2 deepseek_v3 jamba jinja qwen_25 qwen3 qwen3_5 falcon_h1 nemotron_h "
    "tokenizer_default exaone exaone4 metharme pixtral llava qwen2_vl gemma3 gemma3n gemma4 gemma4_unified command_a "
    "command_a_tool_use command_a_rag aya").split()


def test_every_axolotl_template_name_is_known_and_a_misspelt_one_is_a_config_error():
    from axo.data.templates import known_template

    assert [name for name in AXOLOTL_TEMPLATE_NAMES if not known_template(name)] == []
    with pytest.raises(ConfigError) as err:
        validate({"base_model": "m", "chat_template": "qwen3.5",
                  "datasets": [{"path": "x", "type": "chat_template", "chat_template": "gemma_3"}]})
    assert "`chat_template`: unknown template 'qwen3.5'; did you mean `qwen3_5`?" in err.value.problems[0]
    assert "`datasets[0].chat_template`: unknown template 'gemma_3'; did you mean `gemma3`?" in err.value.problems[1]


def test_the_alpaca_template_writes_what_the_alpaca_format_writes(chat):
    """`chat_template: alpaca` (written here) renders a conversation exactly as `type: alpaca` renders
    the same instruction and answer, and trains only the answers."""
    from axo.data.formats.alpaca import PREAMBLE, build_prompt

    build, tok = chat
    conversation = [{"role": "system", "content": PREAMBLE}, *CONVERSATION[1:]]
    row = run(build(top={"chat_template": "alpaca"}), tok, {"messages": conversation})
    first = build_prompt("3 1 2") + "1 2 3" + tok.eos_token
    second = "\n\n### Instruction:\n9 8\n\n### Response:\n8 9" + tok.eos_token
    assert text_of(tok, row) == (tok.bos_token or "") + first + second
    assert trained_runs(tok, row) == ["1 2 3" + tok.eos_token, "8 9" + tok.eos_token]
