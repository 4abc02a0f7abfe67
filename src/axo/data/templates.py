"""Chat templates: the built-in ones, and which one a dataset uses."""

from axo.config.data import DataConfig, DatasetConfig
from axo.data import family_templates
from axo.data.family_templates import FAMILIES
from axo.errors import AxoError

# Literal text sits inside {{- '...' }} so the template's own line breaks and indentation never
# reach the output (transformers renders with trim_blocks and lstrip_blocks).
# ChatML, with tools and tool calls written the way Qwen2.5-style models expect them.
CHATML = r"""
{%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}{{- messages[0].content + '\n\n' }}{%- endif %}
    {{- 'You may call these tools:\n<tools>' }}
    {%- for tool in tools %}{{- '\n' + (tool | tojson) }}{%- endfor %}
    {{- '\n</tools><|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {%- if not (tools and loop.first and message.role == 'system') %}
        {{- '<|im_start|>' + message.role + '\n' }}
        {%- if message.content %}{{- message.content }}{%- endif %}
        {%- for call in message.tool_calls or [] %}
            {%- if message.content or not loop.first %}{{- '\n' }}{%- endif %}
            {{- '<tool_call>\n' + ((call.function or call) | tojson) + '\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}
"""

LLAMA3 = r"""
{{- bos_token }}
{%- for message in messages %}
    {{- '<|start_header_id|>' + ('ipython' if message.role == 'tool' else message.role) + '<|end_header_id|>\n\n' }}
    {%- if message.tool_calls %}
        {%- for call in message.tool_calls %}{{- (call.function or call) | tojson }}{%- endfor %}
    {%- else %}
        {{- message.content | trim }}
    {%- endif %}
    {{- '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}
"""

# Stanford Alpaca's format as a conversation: the same text as the `alpaca` dataset type
# (data/formats/alpaca.py), one "### Instruction / ### Response" pair per exchange.
ALPACA = r"""
{{- bos_token }}
{%- for message in messages %}
    {%- if message.role == 'system' %}
        {{- message.content + '\n\n' }}
    {%- elif message.role == 'user' %}
        {%- if not loop.first and messages[loop.index0 - 1].role == 'assistant' %}{{- '\n\n' }}{%- endif %}
        {{- '### Instruction:\n' + message.content + '\n\n' }}
    {%- elif message.role == 'assistant' %}
        {{- '### Response:\n' + message.content + eos_token }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '### Response:\n' }}{%- endif %}
"""

BUILTIN = {"chatml": CHATML, "llama3": LLAMA3, "alpaca": ALPACA}
# End-of-turn markers of well-known templates; the ones a template contains are its defaults.
KNOWN_EOT = ("<|im_end|>", "<|eot_id|>", "<|eot|>", "<|end|>", "<end_of_turn>", "<|END_OF_TURN_TOKEN|>",
             "<|endoftext|>", "<turn|>", "<|eom|>", "[|endofturn|]", "<｜end▁of▁sentence｜>")
FALLBACK = "tokenizer_default_fallback_"


def known_template(name: str) -> bool:
    """A name `chat_template` accepts (Axolotl's list, plus tokenizer_default_fallback_<built-in>)."""
    return (name in BUILTIN or name in FAMILIES or name in ("tokenizer_default", "jinja")
            or name.removeprefix(FALLBACK) in BUILTIN)


def resolve_template(data: DataConfig, ds: DatasetConfig | None, tokenizer) -> str:
    """The Jinja text a dataset's conversations are rendered with: the dataset's own choice, else
    the one its type names (`chatml.intel`, `llama3.argilla`...), else the top-level one, else the
    tokenizer's."""
    if ds is not None and (ds.chat_template_jinja or ds.chat_template):
        name, jinja, where = ds.chat_template or "jinja", ds.chat_template_jinja, "datasets[].chat_template"
    elif ds is not None and implied_template(ds) and not data.template_name:
        name, jinja, where = implied_template(ds), None, "datasets[].type"
    else:
        name, jinja, where = data.template_name or "tokenizer_default", data.chat_template_jinja, "chat_template"
    return _template(name, jinja, where, tokenizer)


def implied_template(ds: DatasetConfig) -> str | None:
    """The built-in template a `chatml.*` / `llama3.*` type names."""
    family = ds.type_name.split(".")[0]
    return family if family in BUILTIN and "." in ds.type_name else None


def _template(name: str, jinja: str | None, where: str, tokenizer) -> str:
    if name == "jinja":
        if not jinja:
            raise AxoError(f"`{where}: jinja` needs the template text in `chat_template_jinja`.")
        return jinja
    if name in BUILTIN:
        return BUILTIN[name]
    if name in FAMILIES:
        # Axolotl's named templates of model families: a model of the family ships its own, which
        # is used when it carries the family's marker; otherwise the family's format written here.
        own = tokenizer.chat_template or ""
        return own if FAMILIES[name].marker in own else family_templates.jinja(FAMILIES[name])
    if name == "tokenizer_default" or name.startswith(FALLBACK):
        if tokenizer.chat_template:
            return tokenizer.chat_template
        fallback = name.removeprefix(FALLBACK) if name.startswith(FALLBACK) else None
        if fallback in BUILTIN:
            return BUILTIN[fallback]
        raise AxoError(f"`{where}`: the tokenizer has no chat template. Fix: set `chat_template` to "
                       f"one of {', '.join(BUILTIN)}, or give `chat_template_jinja`.")
    raise AxoError(f"`{where}`: unknown template {name!r}; use tokenizer_default, "
                   f"{', '.join(BUILTIN)}, a model family's name ({', '.join(FAMILIES)}), jinja, "
                   f"or {FALLBACK}<name>.")


def end_of_turn_tokens(data: DataConfig, template: str, tokenizer) -> list[str]:
    if data.eot_tokens:
        return data.eot_tokens
    found = [t for t in KNOWN_EOT if t in template]
    return found or [tokenizer.eos_token]
