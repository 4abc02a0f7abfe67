"""Chat templates of model families, written here from each family's documented turn format, for
Axolotl's named templates (`chat_template: gemma3`, `phi_3`, `mistral_v2v3`...) when the model's own
tokenizer does not carry one of that family.

One table describes each family (what goes before and after each role's message, where the system
text goes, the BOS, how image and audio parts are written, reasoning traces) and one function turns
a row of it into Jinja. The templates render plain conversations, multimodal parts and reasoning
traces; tool calls need the model's own template (`tokenizer_default`) or the built-in `chatml` /
`llama3`. Every template only appends text turn after turn, which is what lets axo find each
assistant turn's tokens (data/formats/chat_template.py)."""

import json
from dataclasses import dataclass, field

USE_BOS = "{bos}"  # `bos` value: the tokenizer's BOS token


@dataclass(frozen=True)
class Turns:
    """A family's format. `heads`/`ends`: text before and after a message of each role; `{role}` in
    them stands for the message's role (after `role_names`). A role missing from `heads` is refused."""

    marker: str  # text every template of the family contains: tells whether a tokenizer's own one is
    heads: dict[str, str]
    ends: dict[str, str]
    generation: str | None = None  # what add_generation_prompt writes; default: the assistant's head
    bos: str = ""  # written first: USE_BOS, a literal, or nothing
    role_names: dict[str, str] = field(default_factory=dict)
    # Where the system message goes: its own turn, folded into the first user message, written bare
    # after the BOS (`prefix`), or refused; `system_separator` follows it in the last two cases.
    system: str = "turn"  # turn | first_user | prefix | refused
    system_separator: str = "\n\n"
    default_system: str | None = None  # written when a conversation has none ("" writes an empty turn)
    trim: bool = False  # message text is stripped of surrounding whitespace
    media: dict[str, str] = field(default_factory=dict)  # part type -> the placeholder text
    media_first: bool = False  # all media parts before the text (Llava) rather than in order
    thinking: bool = False  # `reasoning_content` written as <think>...</think> before the answer


CHATML = {"heads": {"system": "<|im_start|>{role}\n", "user": "<|im_start|>{role}\n",
                    "assistant": "<|im_start|>{role}\n", "tool": "<|im_start|>{role}\n"},
          "ends": dict.fromkeys(("system", "user", "assistant", "tool"), "<|im_end|>\n")}
QWEN_VISION = {"image": "<|vision_start|><|image_pad|><|vision_end|>",
               "video": "<|vision_start|><|video_pad|><|vision_end|>"}
GEMMA = {"marker": "<start_of_turn>", "bos": USE_BOS, "system": "first_user", "trim": True,
         "heads": {"user": "<start_of_turn>user\n", "assistant": "<start_of_turn>model\n"},
         "ends": dict.fromkeys(("user", "assistant"), "<end_of_turn>\n")}
PHI3 = {"marker": "<|end|>", "heads": {"system": "<|system|>\n", "user": "<|user|>\n", "assistant": "<|assistant|>\n"},
        "ends": dict.fromkeys(("system", "user", "assistant"), "<|end|>\n")}
# Mistral's own templates put the system text into the *last* user message, so it moves as a
# conversation grows and no turn's tokens stay put; here it goes into the first one, which is the
# same text for the single-exchange rows most datasets hold.
MISTRAL_TEKKEN = {"marker": "[INST]", "bos": USE_BOS, "system": "first_user", "generation": "",
                  "heads": {"user": "[INST]", "assistant": ""}, "ends": {"user": "[/INST]", "assistant": "{eos}"}}
COHERE = {"marker": "<|START_OF_TURN_TOKEN|>", "bos": USE_BOS, "trim": True,
          "heads": {"system": "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>", "user": "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>",
                    "assistant": "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>"},
          "ends": dict.fromkeys(("system", "user", "assistant"), "<|END_OF_TURN_TOKEN|>")}
# Command A wraps each answer in <|START_RESPONSE|> ... <|END_RESPONSE|>.
COMMAND_A = {**COHERE, "heads": {**COHERE["heads"], "assistant": COHERE["heads"]["assistant"] + "<|START_RESPONSE|>"},
             "ends": {**COHERE["ends"], "assistant": "<|END_RESPONSE|><|END_OF_TURN_TOKEN|>"}}
LLAMA3_TURNS = {"marker": "<|start_header_id|>", "bos": USE_BOS, "trim": True, "media": {"image": "<|image|>"},
                "heads": dict.fromkeys(("system", "user", "assistant", "tool"),
                                       "<|start_header_id|>{role}<|end_header_id|>\n\n"),
                "ends": dict.fromkeys(("system", "user", "assistant", "tool"), "<|eot_id|>"),
                "role_names": {"tool": "ipython"}}
GEMMA4 = {"marker": "<|turn>", "bos": USE_BOS, "trim": True, "media": {"image": "<|image|>"},
          "heads": {"system": "<|turn>system\n", "user": "<|turn>user\n", "assistant": "<|turn>model\n"},
          "ends": dict.fromkeys(("system", "user", "assistant"), "<turn|>\n")}

FAMILIES: dict[str, Turns] = {name: Turns(**spec) for name, spec in {
    "qwen_25": {**CHATML, "marker": "<|im_start|>",
                "default_system": "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."},
    "qwen2_vl": {**CHATML, "marker": "<|im_start|>", "default_system": "You are a helpful assistant.",
                 "media": QWEN_VISION},
    "qwen3": {**CHATML, "marker": "<|im_start|>", "thinking": True},
    "qwen3_5": {**CHATML, "marker": "<|im_start|>", "thinking": True, "media": QWEN_VISION},
    "falcon_h1": {**CHATML, "marker": "<|im_start|>", "bos": USE_BOS},
    "nemotron_h": {**CHATML, "marker": "<|im_start|>"},
    "phi_4": {"marker": "<|im_sep|>", "heads": dict.fromkeys(("system", "user", "assistant"), "<|im_start|>{role}<|im_sep|>"),
              "ends": dict.fromkeys(("system", "user", "assistant"), "<|im_end|>")},
    "gemma": {**GEMMA, "system": "refused"},
    "gemma3": {**GEMMA, "media": {"image": "<start_of_image>"}},
    "gemma3n": {**GEMMA, "media": {"image": "<image_soft_token>", "audio": "<audio_soft_token>"}},
    "gemma4": GEMMA4,
    "gemma4_unified": GEMMA4,
    "llama3_2_vision": LLAMA3_TURNS,
    "llama4": {**LLAMA3_TURNS, "marker": "<|header_start|>",
               "heads": dict.fromkeys(("system", "user", "assistant", "tool"), "<|header_start|>{role}<|header_end|>\n\n"),
               "ends": dict.fromkeys(("system", "user", "assistant", "tool"), "<|eot|>")},
    "phi_3": {**PHI3, "bos": USE_BOS},
    "phi_35": PHI3,
    # Mistral's instruct formats differ in spaces around [INST] and in where the system text goes.
    "mistral_v1": {**MISTRAL_TEKKEN, "heads": {"user": " [INST] ", "assistant": " "},
                   "ends": {"user": " [/INST]", "assistant": "{eos}"}},
    "mistral_v2v3": {**MISTRAL_TEKKEN, "heads": {"user": "[INST] ", "assistant": " "}},
    "mistral_v3_tekken": MISTRAL_TEKKEN,
    "pixtral": {**MISTRAL_TEKKEN, "media": {"image": "[IMG]"}},
    "mistral_v7_tekken": {**MISTRAL_TEKKEN, "marker": "[SYSTEM_PROMPT]", "system": "turn",
                          "heads": {**MISTRAL_TEKKEN["heads"], "system": "[SYSTEM_PROMPT]"},
                          "ends": {**MISTRAL_TEKKEN["ends"], "system": "[/SYSTEM_PROMPT]"}},
    "cohere": COHERE,
    "aya": COHERE,
    "command_a": COMMAND_A,
    "command_a_tool_use": COMMAND_A,
    "command_a_rag": COMMAND_A,
    "deepseek_v2": {"marker": "<｜User｜>", "bos": USE_BOS, "system": "prefix", "generation": "<｜Assistant｜>",
                    "heads": {"user": "<｜User｜>", "assistant": "<｜Assistant｜>"}, "ends": {"user": "", "assistant": "{eos}"}},
    "deepseek_v3": {"marker": "<｜User｜>", "bos": USE_BOS, "system": "prefix", "system_separator": "",
                    "heads": {"user": "<｜User｜>", "assistant": "<｜Assistant｜>"},
                    "ends": {"user": "", "assistant": "<｜end▁of▁sentence｜>"}},
    "exaone": {"marker": "[|user|]", "default_system": "",
               "heads": {r: f"[|{r}|]" for r in ("system", "user", "assistant")},
               "ends": {"system": "[|endofturn|]\n", "user": "\n", "assistant": "[|endofturn|]\n"}},
    "exaone4": {"marker": "[|user|]", "thinking": True, "heads": {r: f"[|{r}|]\n" for r in ("system", "user", "assistant")},
                "ends": dict.fromkeys(("system", "user", "assistant"), "[|endofturn|]\n")},
    "jamba": {"marker": "<|bom|>", "bos": "<|startoftext|>", "default_system": "",
              "heads": {r: f"<|bom|><|{r}|> " for r in ("system", "user", "assistant")},
              "ends": dict.fromkeys(("system", "user", "assistant"), "<|eom|>"), "generation": "<|bom|><|assistant|>"},
    "llava": {"marker": "ASSISTANT:", "system": "prefix", "system_separator": " ", "media": {"image": "<image>\n"}, "media_first": True,
              "heads": {"user": "USER: ", "assistant": "ASSISTANT: "}, "ends": {"user": " ", "assistant": " "},
              "generation": "ASSISTANT:"},
    # Pygmalion's Metharme: the end of each answer is EOS, so the model learns where to stop.
    "metharme": {"marker": "<|model|>", "bos": USE_BOS, "trim": True,
                 "default_system": "Enter RP mode. You shall reply to the user while staying in character. Your "
                 "responses must be detailed, creative, immersive, and drive the scenario forward.",
                 "heads": {"system": "<|system|>", "user": "<|user|>", "assistant": "<|model|>"},
                 "ends": {"system": "", "user": "", "assistant": "{eos}"}},
}.items()}


def _text(value: str) -> str:
    """A Jinja expression writing `value`: `{role}`, `{bos}` and `{eos}` become the role and tokens."""
    pieces = []
    for chunk in value.replace("{bos}", "\0bos_token\0").replace("{eos}", "\0eos_token\0").replace(
            "{role}", "\0role\0").split("\0"):
        if chunk in ("bos_token", "eos_token", "role"):
            pieces.append(chunk)
        elif chunk:
            pieces.append(json.dumps(chunk, ensure_ascii=False))
    return " + ".join(pieces) or "''"


def jinja(turns: Turns) -> str:
    """The family's template. Messages are written one after another; the system message is taken
    out first when the family places it elsewhere."""
    parts = ["{%- macro content(c) -%}",
             "{%- if c is string -%}{{ c" + (" | trim" if turns.trim else "") + " }}{%- else -%}"]
    order = [("media", [t for t in turns.media]), ("text", None)] if turns.media_first else [("all", None)]
    for kind, _ in order:
        parts.append("{%- for p in c -%}")
        if kind in ("all", "text"):
            text = "p.text" + (" | trim" if turns.trim else "")
            parts.append("{%- if p.type == 'text' -%}{{ " + text + " }}{%- endif -%}")
        for media, placeholder in turns.media.items() if kind in ("all", "media") else ():
            parts.append(f"{{%- if p.type == '{media}' -%}}{{{{ {_text(placeholder)} }}}}{{%- endif -%}}")
        if kind != "media":  # a part the family has no placeholder for is refused, not dropped
            known = ["text", *turns.media]
            parts.append("{%- if p.type not in " + json.dumps(known) + " -%}{{ raise_exception('this template "
                         "cannot write a ' + p.type + ' part (it writes " + ", ".join(known) + ")') }}{%- endif -%}")
        parts.append("{%- endfor -%}")
    parts += ["{%- endif -%}", "{%- endmacro -%}"]
    parts.append("{%- set system = none -%}{%- set loop_messages = messages -%}")
    parts.append("{%- if messages and messages[0].role == 'system' -%}")
    if turns.system == "refused":
        parts.append("{{ raise_exception('this template has no system role: drop the system message "
                     "(`roles_to_train` / `drop_system_message`) or use another template') }}")
    elif turns.system != "turn":
        parts.append("{%- set system = content(messages[0].content) -%}{%- set loop_messages = messages[1:] -%}")
    parts.append("{%- endif -%}")
    if turns.bos:
        parts.append("{{- " + _text(turns.bos) + " -}}")
    if turns.system == "prefix":
        parts.append("{%- if system -%}{{- system + " + _text(turns.system_separator) + " -}}{%- endif -%}")
    if turns.default_system is not None:
        default = _text(turns.heads["system"].replace("{role}", "system") + turns.default_system
                        + turns.ends["system"])
        parts.append("{%- if not messages or messages[0].role != 'system' -%}{{- " + default + " -}}{%- endif -%}")
    parts.append("{%- for message in loop_messages -%}")
    names = turns.role_names
    parts.append("{%- set role = " + json.dumps(names) + ".get(message.role, message.role) -%}"
                 if names else "{%- set role = message.role -%}")
    for i, (role, head) in enumerate(turns.heads.items()):
        parts.append(("{%- if" if i == 0 else "{%- elif") + f" message.role == '{role}' -%}}")
        parts.append("{{- " + _text(head) + " -}}")
        if role == "user" and turns.system == "first_user":
            parts.append("{%- if system and loop.first -%}{{- system + " + _text(turns.system_separator)
                         + " -}}{%- endif -%}")
        if role == "assistant" and turns.thinking:
            parts.append("{%- if message.reasoning_content -%}{{- '<think>\\n' + message.reasoning_content"
                         " | trim + '\\n</think>\\n\\n' -}}{%- endif -%}")
        parts.append("{{- content(message.content) -}}")
        parts.append("{{- " + _text(turns.ends[role]) + " -}}")
    parts.append("{%- else -%}{{ raise_exception('this template has no ' + message.role + ' role') }}")
    parts += ["{%- endif -%}", "{%- endfor -%}"]
    generation = turns.heads["assistant"] if turns.generation is None else turns.generation
    parts.append("{%- if add_generation_prompt -%}{{- " + _text(generation.replace("{role}", "assistant")) + " -}}")
    if turns.thinking:
        parts.append("{%- if enable_thinking is defined and not enable_thinking -%}"
                     "{{- '<think>\\n\\n</think>\\n\\n' -}}{%- endif -%}")
    parts.append("{%- endif -%}")
    return "\n".join(parts) + "\n"
