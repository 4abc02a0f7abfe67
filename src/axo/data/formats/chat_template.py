"""chat_template: conversations rendered with a Jinja chat template.

Which characters are trained is found by rendering: the conversation up to turn i is a prefix of
the whole rendering, so turn i owns the characters between the two. Inside its turn, an assistant
message is trained from the end of the generation prompt (what `add_generation_prompt` writes) to
its end-of-turn marker, so tool calls are trained with the text; other trained roles train their
content. End-of-turn and EOS markers are trained as `train_on_eot` / `train_on_eos` say.
"""

from axo.data.formats.base import Context, RowError, Segment

ADD_SPECIAL_TOKENS = False  # templates write their own BOS
SPLIT_LONG = False
STANDARD_ROLES = ("system", "user", "assistant", "tool")
DEFAULT_ROLES = {"user": ["human", "user"], "assistant": ["gpt", "model", "assistant"],
                 "system": ["system"], "tool": ["tool", "function", "ipython"]}


def columns(ctx: Context) -> list[str]:
    return [ctx.ds.field_messages]


def segments(row: dict, ctx: Context) -> list[Segment]:
    messages, trained = read_messages(row, ctx)
    tools = row.get(ctx.ds.field_tools) or None
    render = _renderer(ctx, tools)
    full = render(messages)
    spans: list[tuple[int, int]] = []
    turn_start = 0
    for i, (message, train) in enumerate(zip(messages, trained)):
        upto = full if i == len(messages) - 1 else render(messages[: i + 1])
        turn_end = len(upto)
        if not full.startswith(upto):
            raise RowError(ctx.ds.field_messages, "the chat template renders the start of this "
                           "conversation differently from the whole", "Use a template whose turns only append text.")
        body_start, body_end = _body(full, messages, i, turn_start, turn_end, render, ctx, train)
        if train:
            spans.append((body_start, body_end))
        spans += _end_markers(full, body_end, turn_end, train, i == len(messages) - 1, ctx)
        turn_start = turn_end
    return _to_segments(full, spans)


def read_messages(row: dict, ctx: Context) -> tuple[list[dict], list[bool]]:
    ds = ctx.ds
    field = ds.field_messages
    conversation = row.get(field)
    if not isinstance(conversation, list) or not conversation:
        got = "missing" if conversation is None else "empty" if conversation == [] else type(conversation).__name__
        raise RowError(field, f"must be a non-empty list of messages, got {got}",
                       "Fix or remove the row, or point `field_messages` at the right column.")
    mappings = ds.property_mappings
    role_key, content_key = mappings.get("role", "role"), mappings.get("content", "content")
    renamed = {source: target for target, source in mappings.items() if target not in ("role", "content")}
    role_of = {src: target for target, sources in {**DEFAULT_ROLES, **(ds.roles or {})}.items() for src in sources}
    messages, trained = [], []
    for j, raw in enumerate(conversation):
        where = f"{field}[{j}]"
        if not isinstance(raw, dict):
            raise RowError(where, "must be a mapping with role and content", "Fix or remove the row.")
        source = raw.get(role_key)
        if not isinstance(source, str):
            raise RowError(f"{where}.{role_key}", f"must be a role name, got {type(source).__name__}",
                           "Fix or remove the row.")
        role = role_of.get(source, source if source in STANDARD_ROLES else None)
        if role is None:
            raise RowError(f"{where}.{role_key}", f"unknown role {source!r}",
                           f"Map it with `roles:`, e.g. roles: {{user: [{source}]}}.")
        content = raw.get(content_key)
        if content is not None and not isinstance(content, (str, list)):
            raise RowError(f"{where}.{content_key}", f"must be text or a list of parts, got "
                           f"{type(content).__name__}", "Fix or remove the row.")
        if role == "system" and ds.drop_system_message:
            continue
        message = {renamed.get(k, k): v for k, v in raw.items()
                   if v is not None and k not in (role_key, content_key, ds.message_field_training)}
        message.update(role=role, content=content or "")
        messages.append(message)
        flag = raw.get(ds.message_field_training) if ds.message_field_training else None
        trained.append(bool(flag) if flag is not None else role in ds.roles_to_train)
    if ctx.data.default_system_message and not any(m["role"] == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": ctx.data.default_system_message})
        trained.insert(0, "system" in ds.roles_to_train)
    if not messages:
        raise RowError(field, "no messages left after dropping system messages", "Fix or remove the row.")
    return messages, trained


def render(ctx: Context, messages: list[dict], tools=None, generation_prompt: bool = False) -> str:
    """A conversation as the dataset's template writes it. A template that refuses it (its
    `raise_exception`, e.g. roles that do not alternate) makes a row error, naming the row."""
    from jinja2 import TemplateError

    try:
        return ctx.tokenizer.apply_chat_template(messages, tools=tools, chat_template=ctx.template, tokenize=False,
                                                 add_generation_prompt=generation_prompt,
                                                 **(ctx.data.chat_template_kwargs or {}))
    except TemplateError as err:
        raise RowError(ctx.ds.field_messages, f"is refused by the chat template: {err}",
                       "Fix the conversation, or use a template that accepts it (`chat_template`).") from None


def _renderer(ctx: Context, tools):
    return lambda messages, generation_prompt=False: render(ctx, messages, tools, generation_prompt)


def _body(full: str, messages, i: int, turn_start: int, turn_end: int, render, ctx, train: bool) -> tuple[int, int]:
    """Where turn i's trainable text starts and ends. A message that does not train need not be
    found: templates that fold the system text into a user turn (Mistral, Gemma) write it elsewhere."""
    message = messages[i]
    if message["role"] == "assistant" and i > 0:
        head = render(messages[:i], generation_prompt=True)
        # A template that writes nothing for add_generation_prompt leaves no head to go by.
        if full.startswith(head) and turn_start < len(head) <= turn_end:
            end = _first_marker(full, len(head), turn_end, ctx)
            return len(head), end[0] if end else turn_end
    content = message["content"] if isinstance(message["content"], str) else _text_of(message["content"])
    for candidate in (content, content.strip()):
        at = full.find(candidate, turn_start, turn_end) if candidate else -1
        if at >= 0:
            return at, at + len(candidate)
    if message.get("tool_calls") or not content or not train:
        return turn_start, turn_start  # nothing locatable to train, or nothing to train: an empty body
    raise RowError(f"{ctx.ds.field_messages}[{i}]", "the chat template changes this message's text, so "
                   "its tokens cannot be located", "Use a template that writes message content as is.")


def _text_of(parts: list) -> str:
    """The text of a multimodal message ({type: text, text: ...} parts), to locate it."""
    return "".join(p.get("text") or "" for p in parts if isinstance(p, dict) and p.get("type") == "text")


def _first_marker(full: str, start: int, end: int, ctx) -> tuple[int, str] | None:
    hits = [(full.find(m, start, end), m) for m in _markers(ctx)]
    hits = [h for h in hits if h[0] >= 0]
    return min(hits) if hits else None


def _markers(ctx: Context) -> tuple[str, ...]:
    eos = ctx.tokenizer.eos_token
    return ctx.eot + ((eos,) if eos and eos not in ctx.eot else ())


def _end_markers(full: str, start: int, end: int, train: bool, last: bool, ctx: Context):
    """The first occurrence of each end marker after the turn's body, if its policy trains it."""
    spans = []
    for marker in _markers(ctx):
        at = full.find(marker, start, end)
        policy = ctx.ds.eot_policy if marker in ctx.eot else ctx.ds.train_on_eos
        if at >= 0 and (policy == "all" or (policy == "turn" and train) or (policy == "last" and last)):
            spans.append((at, at + len(marker)))
    return spans


def _to_segments(text: str, spans: list[tuple[int, int]]) -> list[Segment]:
    out, pos = [], 0
    for start, end in sorted(spans):
        start = max(start, pos)
        if start > pos:
            out.append((text[pos:start], False))
        if end > start:
            out.append((text[start:end], True))
        pos = max(pos, end)
    if pos < len(text):
        out.append((text[pos:], False))
    return out


def prompt(text: str, ctx: Context) -> str:
    messages = [{"role": "user", "content": text}]
    if ctx.data.default_system_message:
        messages.insert(0, {"role": "system", "content": ctx.data.default_system_message})
    return render(ctx, messages, generation_prompt=True)
