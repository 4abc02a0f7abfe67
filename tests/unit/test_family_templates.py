"""Axolotl's named chat templates of model families, written here (data/family_templates.py) for
tokenizers that lack one: a golden rendering of the same conversation per family, the generation
prompt, where the system text goes, image/audio placeholders, reasoning traces, and labels on exactly
each answer and its end of turn, on the tiny tokenizer and on real SentencePiece / BPE ones."""

import pytest
from transformers.utils.chat_template_utils import render_jinja_template

from axo.data.chat import setup_chat
from axo.data.family_templates import FAMILIES, jinja
from axo.data.templates import resolve_template
from axo.errors import AxoError
from axo.model.tokenizer import load_tokenizer
from unit.data_helpers import tokenize, trained_runs

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Sort 3 1 2"},
    {"role": "assistant", "content": "1 2 3"},
]
# family -> (the whole conversation, what the generation prompt adds after the last user turn).
# Checked by hand against each family's documented format and against Axolotl 0.19's templates,
# which render these same strings except where noted in data/family_templates.py (Mistral's system
# text in the first user turn; no default system prompts that carry today's date).
GOLDEN = {
    'qwen_25': ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nSort 3 1 2<|im_end|>\n<|im_start|>assistant\n1 2 3<|im_end|>\n",
        "<|im_start|>assistant\n"),
    'qwen2_vl': ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nSort 3 1 2<|im_end|>\n<|im_start|>assistant\n1 2 3<|im_end|>\n",
        "<|im_start|>assistant\n"),
    'qwen3': ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nSort 3 1 2<|im_end|>\n<|im_start|>assistant\n1 2 3<|im_end|>\n",
        "<|im_start|>assistant\n"),
    'qwen3_5': ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nSort 3 1 2<|im_end|>\n<|im_start|>assistant\n1 2 3<|im_end|>\n",
        "<|im_start|>assistant\n"),
    'falcon_h1': ("<BOS><|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nSort 3 1 2<|im_end|>\n<|im_start|>assistant\n1 2 3<|im_end|>\n",
        "<|im_start|>assistant\n"),
    'nemotron_h': ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nSort 3 1 2<|im_end|>\n<|im_start|>assistant\n1 2 3<|im_end|>\n",
        "<|im_start|>assistant\n"),
    'phi_4': ("<|im_start|>system<|im_sep|>Be brief.<|im_end|><|im_start|>user<|im_sep|>Hi there<|im_end|><|im_start|>assistant<|im_sep|>Hello!<|im_end|><|im_start|>user<|im_sep|>Sort 3 1 2<|im_end|><|im_start|>assistant<|im_sep|>1 2 3<|im_end|>",
        "<|im_start|>assistant<|im_sep|>"),
    'gemma': ("<BOS><start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n",
        "<start_of_turn>model\n"),
    'gemma3': ("<BOS><start_of_turn>user\nBe brief.\n\nHi there<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n<start_of_turn>user\nSort 3 1 2<end_of_turn>\n<start_of_turn>model\n1 2 3<end_of_turn>\n",
        "<start_of_turn>model\n"),
    'gemma3n': ("<BOS><start_of_turn>user\nBe brief.\n\nHi there<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n<start_of_turn>user\nSort 3 1 2<end_of_turn>\n<start_of_turn>model\n1 2 3<end_of_turn>\n",
        "<start_of_turn>model\n"),
    'gemma4': ("<BOS><|turn>system\nBe brief.<turn|>\n<|turn>user\nHi there<turn|>\n<|turn>model\nHello!<turn|>\n<|turn>user\nSort 3 1 2<turn|>\n<|turn>model\n1 2 3<turn|>\n",
        "<|turn>model\n"),
    'gemma4_unified': ("<BOS><|turn>system\nBe brief.<turn|>\n<|turn>user\nHi there<turn|>\n<|turn>model\nHello!<turn|>\n<|turn>user\nSort 3 1 2<turn|>\n<|turn>model\n1 2 3<turn|>\n",
        "<|turn>model\n"),
    'llama3_2_vision': ("<BOS><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nSort 3 1 2<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n1 2 3<|eot_id|>",
        "<|start_header_id|>assistant<|end_header_id|>\n\n"),
    'llama4': ("<BOS><|header_start|>system<|header_end|>\n\nBe brief.<|eot|><|header_start|>user<|header_end|>\n\nHi there<|eot|><|header_start|>assistant<|header_end|>\n\nHello!<|eot|><|header_start|>user<|header_end|>\n\nSort 3 1 2<|eot|><|header_start|>assistant<|header_end|>\n\n1 2 3<|eot|>",
        "<|header_start|>assistant<|header_end|>\n\n"),
    'phi_3': ("<BOS><|system|>\nBe brief.<|end|>\n<|user|>\nHi there<|end|>\n<|assistant|>\nHello!<|end|>\n<|user|>\nSort 3 1 2<|end|>\n<|assistant|>\n1 2 3<|end|>\n",
        "<|assistant|>\n"),
    'phi_35': ("<|system|>\nBe brief.<|end|>\n<|user|>\nHi there<|end|>\n<|assistant|>\nHello!<|end|>\n<|user|>\nSort 3 1 2<|end|>\n<|assistant|>\n1 2 3<|end|>\n",
        "<|assistant|>\n"),
    'mistral_v1': ("<BOS> [INST] Be brief.\n\nHi there [/INST] Hello!<EOS> [INST] Sort 3 1 2 [/INST] 1 2 3<EOS>",
        ""),
    'mistral_v2v3': ("<BOS>[INST] Be brief.\n\nHi there[/INST] Hello!<EOS>[INST] Sort 3 1 2[/INST] 1 2 3<EOS>",
        ""),
    'mistral_v3_tekken': ("<BOS>[INST]Be brief.\n\nHi there[/INST]Hello!<EOS>[INST]Sort 3 1 2[/INST]1 2 3<EOS>",
        ""),
    'pixtral': ("<BOS>[INST]Be brief.\n\nHi there[/INST]Hello!<EOS>[INST]Sort 3 1 2[/INST]1 2 3<EOS>",
        ""),
    'mistral_v7_tekken': ("<BOS>[SYSTEM_PROMPT]Be brief.[/SYSTEM_PROMPT][INST]Hi there[/INST]Hello!<EOS>[INST]Sort 3 1 2[/INST]1 2 3<EOS>",
        ""),
    'cohere': ("<BOS><|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>Be brief.<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hi there<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>Hello!<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Sort 3 1 2<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>1 2 3<|END_OF_TURN_TOKEN|>",
        "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>"),
    'aya': ("<BOS><|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>Be brief.<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hi there<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>Hello!<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Sort 3 1 2<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>1 2 3<|END_OF_TURN_TOKEN|>",
        "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>"),
    'command_a': ("<BOS><|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>Be brief.<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hi there<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|><|START_RESPONSE|>Hello!<|END_RESPONSE|><|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Sort 3 1 2<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|><|START_RESPONSE|>1 2 3<|END_RESPONSE|><|END_OF_TURN_TOKEN|>",
        "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|><|START_RESPONSE|>"),
    'command_a_tool_use': ("<BOS><|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>Be brief.<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hi there<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|><|START_RESPONSE|>Hello!<|END_RESPONSE|><|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Sort 3 1 2<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|><|START_RESPONSE|>1 2 3<|END_RESPONSE|><|END_OF_TURN_TOKEN|>",
        "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|><|START_RESPONSE|>"),
    'command_a_rag': ("<BOS><|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>Be brief.<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hi there<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|><|START_RESPONSE|>Hello!<|END_RESPONSE|><|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Sort 3 1 2<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|><|START_RESPONSE|>1 2 3<|END_RESPONSE|><|END_OF_TURN_TOKEN|>",
        "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|><|START_RESPONSE|>"),
    'deepseek_v2': ("<BOS>Be brief.\n\n<｜User｜>Hi there<｜Assistant｜>Hello!<EOS><｜User｜>Sort 3 1 2<｜Assistant｜>1 2 3<EOS>",
        "<｜Assistant｜>"),
    'deepseek_v3': ("<BOS>Be brief.<｜User｜>Hi there<｜Assistant｜>Hello!<｜end▁of▁sentence｜><｜User｜>Sort 3 1 2<｜Assistant｜>1 2 3<｜end▁of▁sentence｜>",
        "<｜Assistant｜>"),
    'exaone': ("[|system|]Be brief.[|endofturn|]\n[|user|]Hi there\n[|assistant|]Hello![|endofturn|]\n[|user|]Sort 3 1 2\n[|assistant|]1 2 3[|endofturn|]\n",
        "[|assistant|]"),
    'exaone4': ("[|system|]\nBe brief.[|endofturn|]\n[|user|]\nHi there[|endofturn|]\n[|assistant|]\nHello![|endofturn|]\n[|user|]\nSort 3 1 2[|endofturn|]\n[|assistant|]\n1 2 3[|endofturn|]\n",
        "[|assistant|]\n"),
    'jamba': ("<|startoftext|><|bom|><|system|> Be brief.<|eom|><|bom|><|user|> Hi there<|eom|><|bom|><|assistant|> Hello!<|eom|><|bom|><|user|> Sort 3 1 2<|eom|><|bom|><|assistant|> 1 2 3<|eom|>",
        "<|bom|><|assistant|>"),
    'llava': ("Be brief. USER: Hi there ASSISTANT: Hello! USER: Sort 3 1 2 ASSISTANT: 1 2 3 ",
        "ASSISTANT:"),
    'metharme': ("<BOS><|system|>Be brief.<|user|>Hi there<|model|>Hello!<EOS><|user|>Sort 3 1 2<|model|>1 2 3<EOS>",
        "<|model|>"),
}


def render(template: str, messages: list, generation_prompt: bool = False) -> str:
    [text], _ = render_jinja_template(conversations=[messages], chat_template=template, bos_token="<BOS>",
                                      eos_token="<EOS>", add_generation_prompt=generation_prompt)
    return text


def test_every_family_has_a_golden_rendering():
    assert set(GOLDEN) == set(FAMILIES)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_golden_rendering(name):
    conversation = CONVERSATION[1:3] if name == "gemma" else CONVERSATION
    whole, generation = GOLDEN[name]
    template = jinja(FAMILIES[name])
    assert render(template, conversation) == whole
    before = render(template, conversation[:-1])
    assert render(template, conversation[:-1], generation_prompt=True) == before + generation
    # Every turn only appends text: what lets axo find each answer's tokens.
    for i in range(1, len(conversation)):
        assert whole.startswith(render(template, conversation[:i]))


def test_default_system_prompts_and_refused_system_messages():
    user = CONVERSATION[1:2]
    assert render(jinja(FAMILIES["qwen_25"]), user).startswith(
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n")
    assert render(jinja(FAMILIES["exaone"]), user).startswith("[|system|][|endofturn|]\n[|user|]")
    assert render(jinja(FAMILIES["jamba"]), user).startswith("<|startoftext|><|bom|><|system|> <|eom|>")
    with pytest.raises(Exception, match="this template has no system role"):
        render(jinja(FAMILIES["gemma"]), CONVERSATION)
    with pytest.raises(Exception, match="this template has no tool role"):
        render(jinja(FAMILIES["gemma3"]), [*CONVERSATION[1:3], {"role": "tool", "content": "42"}])


IMAGE_ROW = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]},
             {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]}]


@pytest.mark.parametrize("name,user_turn", [
    ("qwen2_vl", "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is it?<|im_end|>\n"),
    ("gemma3", "<start_of_turn>user\n<start_of_image>What is it?<end_of_turn>\n"),
    ("llama3_2_vision", "<|start_header_id|>user<|end_header_id|>\n\n<|image|>What is it?<|eot_id|>"),
    ("pixtral", "[INST][IMG]What is it?[/INST]"),
    ("llava", "USER: <image>\nWhat is it? "),
])
def test_image_parts_are_written_with_the_familys_placeholder(name, user_turn):
    assert user_turn in render(jinja(FAMILIES[name]), IMAGE_ROW)


def test_a_part_the_family_cannot_write_is_refused_not_dropped():
    with pytest.raises(Exception, match="cannot write a image part"):
        render(jinja(FAMILIES["mistral_v3_tekken"]), IMAGE_ROW)
    audio = [{"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": "Say it"}]}]
    assert "<audio_soft_token>Say it" in render(jinja(FAMILIES["gemma3n"]), audio)


def test_reasoning_traces_and_enable_thinking():
    row = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4", "reasoning_content": "two and two"}]
    assert render(jinja(FAMILIES["qwen3"]), row).endswith(
        "<|im_start|>assistant\n<think>\ntwo and two\n</think>\n\n4<|im_end|>\n")
    [text], _ = render_jinja_template(conversations=[row[:1]], chat_template=jinja(FAMILIES["qwen3"]),
                                      add_generation_prompt=True, enable_thinking=False)
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


@pytest.mark.parametrize("name", [n for n in FAMILIES if n != "gemma"])
def test_labels_cover_exactly_each_answer_and_its_end_of_turn(make_config, name):
    cfg = make_config(datasets=[{"path": "x", "type": "chat_template"}], sequence_len=1024, chat_template=name)
    tokenizer = load_tokenizer(cfg)
    setup_chat(cfg, tokenizer)
    [row] = tokenize(cfg, tokenizer, [{"messages": CONVERSATION}])
    end = GOLDEN[name][0].rsplit("1 2 3", 1)[1].replace("<EOS>", tokenizer.eos_token)
    trained = [run.strip() for run in trained_runs(tokenizer, row)]
    assert trained == [("Hello!" + end).strip(), ("1 2 3" + end).strip()], name


def test_the_tokenizers_own_template_wins_when_it_is_of_the_family(make_config):
    cfg = make_config(chat_template="gemma3", datasets=[{"path": "x", "type": "chat_template"}])
    tokenizer = load_tokenizer(cfg)
    own = "{%- for m in messages %}{{ '<start_of_turn>' + m.role + '\n' + m.content + '<end_of_turn>\n' }}{%- endfor %}"
    tokenizer.chat_template = own
    assert resolve_template(cfg.data, cfg.data.datasets[0], tokenizer) == own
    tokenizer.chat_template = "{{ '<|im_start|>' }}"  # a ChatML tokenizer under `gemma3`: the family's format
    assert resolve_template(cfg.data, cfg.data.datasets[0], tokenizer) == jinja(FAMILIES["gemma3"])


def test_an_unknown_name_is_refused_with_the_list(make_config):
    cfg = make_config(datasets=[{"path": "x", "type": "chat_template"}])
    with pytest.raises(AxoError, match="unknown template 'gemma9'.*gemma3"):
        from axo.data.templates import _template
        _template("gemma9", None, "chat_template", load_tokenizer(cfg))


@pytest.mark.parametrize("real,name,specials", [
    ("llama2-spm", "mistral_v1", []), ("llama2-spm", "mistral_v2v3", []), ("llama2-spm", "mistral_v3_tekken", []),
    ("llama2-spm", "gemma3", ["<start_of_turn>", "<end_of_turn>"]), ("llama2-spm", "metharme", []),
    ("llama3-bpe", "llama3_2_vision", []), ("llama3-bpe", "deepseek_v3", ["<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>"]),
    ("llama3-bpe", "phi_4", ["<|im_start|>", "<|im_sep|>", "<|im_end|>"]),
])
def test_labels_on_real_tokenizers_without_a_template_of_their_own(make_config, real, name, specials):
    """SentencePiece folds the space before a word into its token: the answer after ` [/INST] ` or
    `[/INST]` must still train exactly, with the turn's end (EOS for Mistral). The markers a family's
    real tokenizer holds as special tokens are added as such (Mistral's [INST] is plain text in v1)."""
    from transformers import AutoTokenizer

    from fixtures.real_tokenizers import folder

    tokenizer = AutoTokenizer.from_pretrained(folder() / real)
    assert not tokenizer.chat_template
    tokenizer.add_tokens(specials, special_tokens=True)
    cfg = make_config(datasets=[{"path": "x", "type": "chat_template"}], sequence_len=1024, chat_template=name)
    setup_chat(cfg, tokenizer)
    [row] = tokenize(cfg, tokenizer, [{"messages": CONVERSATION}])
    end = GOLDEN[name][0].rsplit("1 2 3", 1)[1].replace("<EOS>", tokenizer.eos_token)
    assert [run.strip() for run in trained_runs(tokenizer, row)] == [("Hello!" + end).strip(), ("1 2 3" + end).strip()]
