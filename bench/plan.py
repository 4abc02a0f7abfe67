"""How long `axo plan` takes, from the config alone, on Llama 3 8B and 70B shapes (config.json
written from the published shapes; no weights exist or are read) and Qwen2.5-0.5B's, against
the time the same process takes to import the libraries every axo command imports.

    .venv/bin/python bench/plan.py
"""

import json
import sys
import tempfile
import time
from pathlib import Path

started = time.perf_counter()
import torch  # noqa: E402,F401
import transformers.modeling_utils  # noqa: E402,F401

imports = time.perf_counter() - started
sys.path.insert(0, str(Path(__file__).parents[1] / "src"))
from axo.config import validate  # noqa: E402
from axo.plan import device_of, make_plan, summary_line  # noqa: E402

LLAMA3 = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 128256, "num_key_value_heads": 8,
          "rope_theta": 500000.0, "tie_word_embeddings": False, "rms_norm_eps": 1e-5}
MODELS = {
    "Llama-3-8B": {**LLAMA3, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
                   "num_attention_heads": 32},
    "Llama-3-70B": {**LLAMA3, "hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80,
                    "num_attention_heads": 64},
    "Qwen2.5-0.5B": {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 151936,
                     "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
                     "num_key_value_heads": 2, "tie_word_embeddings": True},
}
RUNS = [
    ("Llama-3-70B", "QLoRA r16, 1x2048, checkpointing", "H100-80GB", 1,
     {"adapter": "qlora", "load_in_4bit": True, "lora_r": 16, "lora_target_linear": True, "micro_batch_size": 1,
      "sequence_len": 2048, "gradient_checkpointing": True}),
    ("Llama-3-8B", "full, FSDP2 on 8, 1x4096 x4, checkpointing", "H100-80GB", 8,
     {"fsdp_version": 2, "micro_batch_size": 1, "gradient_accumulation_steps": 4, "sequence_len": 4096,
      "gradient_checkpointing": True}),
    ("Llama-3-8B", "full, 4x2048 x2 (does not fit: suggestions)", "A100-40GB", 1,
     {"micro_batch_size": 4, "gradient_accumulation_steps": 2, "sequence_len": 2048}),
    ("Qwen2.5-0.5B", "LoRA, 4x1024", "L4", 1,
     {"adapter": "lora", "lora_target_linear": True, "micro_batch_size": 4, "sequence_len": 1024}),
]

print(f"importing torch and transformers: {imports:.2f} s (every axo command pays it)")
with tempfile.TemporaryDirectory() as tmp:
    for model, what, gpu, processes, keys in RUNS:
        folder = Path(tmp, model)
        folder.mkdir(exist_ok=True)
        (folder / "config.json").write_text(json.dumps(MODELS[model]))
        raw = {"base_model": str(folder), "datasets": [{"path": "x.jsonl", "type": "alpaca"}], "bf16": "auto", **keys}
        make_plan(validate(raw), device_of(gpu), processes)  # imports peft and the model's code once
        plan = make_plan(validate(raw), device_of(gpu), processes)  # a fresh config: nothing reused
        print(f"{model}, {what}, {gpu} x{processes}: planned in {plan.planning_seconds:.2f} s"
              f"{f' (+{len(plan.suggestions)} suggestions)' if plan.suggestions else ''}\n  {summary_line(plan)}")
