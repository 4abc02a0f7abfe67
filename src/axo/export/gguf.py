"""`axo export --format gguf`: the trained model (an adapter merged in first) as a GGUF file that
llama.cpp, Ollama and LM Studio serve, written by llama.cpp's own converter (export/llama_cpp.py) with
the tokenizer, the chat template and the stop tokens in its metadata, and an Ollama Modelfile with
the same template and stop tokens. export/serving.py then checks that the file computes what the
trained model does."""

import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

from axo.config import Config
from axo.errors import AxoError
from axo.infer.generate import load_generator

log = logging.getLogger("axo")

# Architectures exported: each is checked at export (check-serving); Llama and Qwen2 are also in the
# tests (real tokenizers, f32 logits within 1e-4, q8_0 top-1 agreement).
SUPPORTED = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "Phi3ForCausalLM",
             "Gemma3ForCausalLM")
CONVERTED = ("f32", "f16", "bf16", "q8_0")  # written by the converter itself
QUANTIZED = {"q4_0": 2, "q4_k_m": 15, "q5_k_m": 17, "q6_k": 18}  # llama.cpp's llama_ftype, from f16


def export_gguf(cfg: Config, quant: str = "f16", checkpoint: str | None = None) -> Path:
    """Write output_dir/gguf/model-<quant>.gguf (and the Modelfile); returns the GGUF's path."""
    if quant not in CONVERTED and quant not in QUANTIZED:
        raise AxoError(f"--quant {quant!r} is not a GGUF type axo writes; use one of "
                       + ", ".join([*CONVERTED, *QUANTIZED]) + ".")
    folder = _plain_model(cfg, checkpoint)
    architecture = (json.loads((folder / "config.json").read_text()).get("architectures") or ["?"])[0]
    if architecture not in SUPPORTED:
        raise AxoError(f"GGUF export of {architecture} is not supported; axo exports " + ", ".join(SUPPORTED)
                       + ". Fix: serve the transformers folder (e.g. vLLM: `axo vllm-serve`).")
    out = Path(cfg.train.output_dir) / "gguf"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"model-{quant}.gguf"
    with tempfile.TemporaryDirectory(dir=out) as tmp:  # a failed export leaves no half-written file
        written = Path(tmp) / path.name
        if quant in CONVERTED:
            _convert(folder, written, quant)
        else:
            _convert(folder, Path(tmp) / "f16.gguf", "f16")
            _quantize(Path(tmp) / "f16.gguf", written, QUANTIZED[quant])
        written.replace(path)
    write_modelfile(out / "Modelfile", path, load_generator(cfg, checkpoint, model=False))
    log.info("GGUF written to %s (%.1f MB)", path, path.stat().st_size / 2**20)
    return path


def _plain_model(cfg: Config, checkpoint: str | None) -> Path:
    """The trained model as a transformers folder: itself, or the base with the adapter merged in."""
    from axo.model.loader import holds_adapter, trained_model_dir

    folder = trained_model_dir(cfg, checkpoint)
    if folder is None:
        raise AxoError(f"nothing trained in {cfg.train.output_dir} to export. Fix: `axo train` first, or pass "
                       "--checkpoint.")
    if not holds_adapter(folder):
        return folder
    from axo.export.merge import merge_lora

    log.info("Merging the adapter in %s into the base model first", folder)
    return merge_lora(cfg, str(folder))


def _convert(folder: Path, path: Path, outtype: str) -> None:
    from axo.export.llama_cpp import converter

    command = [sys.executable, "-m", "axo.export.convert", str(converter()), str(folder), "--outfile", str(path),
               "--outtype", outtype]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        raise AxoError(f"llama.cpp's converter could not convert {folder}:\n{run.stderr[-2000:]}")


def _quantize(source: Path, path: Path, ftype: int) -> None:
    from axo.export.llama_child import LlamaChild

    with LlamaChild(file_type=path.stem.rsplit("-", 1)[-1], target=path.name) as llama:
        if llama.call("quantize", str(source), str(path), ftype) != 0:
            raise AxoError(f"llama.cpp could not quantize {source}")


def write_modelfile(path: Path, gguf: Path, prompts) -> None:
    """An Ollama Modelfile: the GGUF, the chat template as Ollama's Go template (without one, the
    training prompt format), and the tokens `axo inference` stops on (`prompts`: its Generator, with
    the trained folder's tokenizer)."""
    tokenizer = prompts.tokenizer
    lines = [f"FROM ./{gguf.name}"]
    prompt, _ = prompts.kind.prompt("\x01")
    template = (go_template(tokenizer) if tokenizer.chat_template else
                prompt.replace("\x01", "{{ .Prompt }}") if prompt.count("\x01") == 1 else None)
    if template is not None:
        lines.append(f'TEMPLATE """{template}"""')
    elif tokenizer.chat_template:
        log.warning("The chat template cannot be written as Ollama's Go template; the Modelfile leaves it to "
                    "Ollama, which reads the one in the GGUF")
    for stop in prompts.stop_ids:
        lines.append(f"PARAMETER stop {json.dumps(tokenizer.convert_ids_to_tokens(stop))}")
    path.write_text("\n".join(lines) + "\n")


def go_template(tokenizer) -> str | None:
    """The chat template as Ollama's Go template, or None where it cannot be one. It is read off by
    rendering probe conversations: each role's message sits between a fixed head and tail, a default
    system text may open a conversation without one, and the generation prompt follows the last
    message. The pieces are checked by rendering multi-turn conversations both ways."""
    pieces = _pieces(tokenizer)
    if pieces is None:
        return None
    roles, opening, generation = pieces
    branches = "".join(f'{{{{- if eq .Role "{role}" }}}}{head}{{{{ .Content }}}}{tail}{{{{ end }}}}'
                       for role, (head, tail) in roles.items())
    return ("{{- range $i, $_ := .Messages }}{{- $last := eq (len (slice $.Messages $i)) 1 }}"
            + (f'{{{{- if and (eq $i 0) (ne .Role "system") }}}}{opening}{{{{ end }}}}' if opening else "")
            + branches + f'{{{{- if and $last (ne .Role "assistant") }}}}{generation}{{{{ end }}}}'
            + "{{- end }}").replace('"""', '\\"\\"\\"')


def without_bos(tokenizer, text: str) -> str:
    """A rendered prompt less the BOS token that llama.cpp adds itself when it tokenizes, as the tokenizer
    does. Only then: SmolLM2's BOS is <|im_start|>, which its template writes and its tokenizer never adds."""
    bos = tokenizer.bos_token
    adds = bos is not None and tokenizer("a")["input_ids"][:1] == [tokenizer.bos_token_id]
    return text[len(bos):] if adds and text.startswith(bos) else text


def _pieces(tokenizer):
    """({role: (head, tail)}, the default opening, the generation prompt), or None."""

    def render(messages, generation=False) -> str:
        return without_bos(tokenizer, tokenizer.apply_chat_template(messages, tokenize=False,
                                                                    add_generation_prompt=generation))

    m = {r: {"role": r, "content": f"\x01{r}\x01"} for r in ("system", "user", "assistant")}
    u2 = {"role": "user", "content": "\x02"}
    try:
        roles = {"user": _around(_after(render([m["user"], m["assistant"], u2]), render([m["user"], m["assistant"]])),
                                 u2["content"]),
                 "assistant": _around(_after(render([m["user"], m["assistant"]]), render([m["user"]])),
                                      m["assistant"]["content"])}
        first = render([m["user"]])
        opening = first[:len(first) - len("".join(roles["user"])) - len(m["user"]["content"])]
        generation = _after(render([m["user"]], True), first)
        try:
            with_system = render([m["system"], m["user"]])
            user_turn = first[len(opening):]
            if with_system.endswith(user_turn):
                roles["system"] = _around(with_system[:-len(user_turn)], m["system"]["content"])
        except Exception:  # a template without system turns
            pass
    except ValueError:
        return None

    def ours(messages) -> str:  # (with the generation prompt)
        text = opening if messages[0]["role"] != "system" else ""
        text += "".join(roles[x["role"]][0] + x["content"] + roles[x["role"]][1] for x in messages)
        return text + (generation if messages[-1]["role"] != "assistant" else "")

    probes = [[m["user"], m["assistant"], u2]] + ([[m["system"], m["user"], m["assistant"], u2]] if "system" in roles else [])
    if any(ours(p) != render(p, True) for p in probes):
        return None
    return roles, opening, generation


def _after(text: str, prefix: str) -> str:
    if not text.startswith(prefix):
        raise ValueError("the template rewrites earlier turns")
    return text[len(prefix):]


def _around(text: str, content: str) -> tuple[str, str]:
    if text.count(content) != 1:
        raise ValueError("the template does not write a message as it is")
    head, tail = text.split(content)
    return head, tail
