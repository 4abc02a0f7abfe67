"""`llama4_linearized_experts`: a tiny Llama 4 saved in Axolotl's linearized layout (each expert's
projections their own Linear) loads to exactly the logits of the fused original, LoRA reaches
each expert and trains, and `axo merge-lora` writes a model plain transformers loads, computing
what the trained base + adapter computed."""

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, Llama4TextConfig

from axo.export.merge import merge_lora
from axo.model.loader import load_for_inference
from axo.model.preflight import resolve_precision
from conftest import EXAMPLES

VOCAB = 373  # the examples' tiny tokenizer


def linearized(state: dict, expert_dim: int) -> dict:
    """Axolotl's layout, written the way its delinearize tool reads it back."""
    out = {}
    for key, value in state.items():
        prefix, _, name = key.rpartition(".")
        if name == "gate_up_proj" and prefix.endswith("experts"):
            for e, fused in enumerate(value):
                out[f"{prefix}.gate_projs.{e}.weight"] = fused[:, :expert_dim].T.contiguous()
                out[f"{prefix}.up_projs.{e}.weight"] = fused[:, expert_dim:].T.contiguous()
        elif name == "down_proj" and prefix.endswith("experts"):
            for e, weight in enumerate(value):
                out[f"{prefix}.down_projs.{e}.weight"] = weight.T.contiguous()
        else:
            out[key] = value.contiguous()
    return out


@pytest.fixture(scope="module")
def llama4(tmp_path_factory):
    """(original folder, linearized folder) of one random tiny Llama 4 with 4 experts per layer."""
    root = tmp_path_factory.mktemp("llama4")
    config = Llama4TextConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, intermediate_size_mlp=64,
                              num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                              num_local_experts=4, num_experts_per_tok=1, interleave_moe_layer_step=1,
                              initializer_range=0.2, tie_word_embeddings=False)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    for folder in (root / "original", root / "linearized"):
        folder.mkdir()
        for name in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(EXAMPLES / "tiny-llama" / name, folder / name)
    model.save_pretrained(root / "original")
    model.config.save_pretrained(root / "linearized")
    save_file(linearized(model.state_dict(), config.intermediate_size), root / "linearized" / "model.safetensors",
              metadata={"format": "pt"})
    return root / "original", root / "linearized"


def ids():
    return torch.randint(0, VOCAB, (2, 9), generator=torch.Generator().manual_seed(1))


def test_linearized_checkpoint_loads_to_the_original_logits(llama4, make_config):
    from axo.model.loader import load_model

    original, folder = llama4
    cfg = make_config(base_model=str(folder), llama4_linearized_experts=True)
    model = load_model(cfg, resolve_precision(cfg.model))
    experts = model.model.layers[0].feed_forward.experts
    assert type(experts).__name__ == "LinearizedExperts" and len(experts.gate_projs) == 4
    with torch.no_grad():
        expected = AutoModelForCausalLM.from_pretrained(original)(ids()).logits
        assert torch.allclose(model(ids()).logits, expected, atol=1e-6)
    # without the key, transformers' Llama 4 cannot read the experts (they would start random)
    plain = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        assert not torch.allclose(plain(ids()).logits, expected, atol=1e-3)


def test_lora_trains_each_expert_and_merges_into_plain_llama4(llama4, make_config):
    _, folder = llama4
    cfg = make_config(base_model=str(folder), llama4_linearized_experts=True, adapter="lora", lora_r=4,
                      lora_alpha=8, lora_target_linear=True, max_steps=6)
    from axo.train.sft import train

    train(cfg)
    out = Path(cfg.train.output_dir)
    adapted, _, _ = load_for_inference(cfg)
    names = [n for n, _ in adapted.named_parameters() if "lora_A" in n]
    assert any("experts.gate_projs.3." in n for n in names) and any("experts.down_projs.0." in n for n in names)
    merged = merge_lora(cfg)
    plain = AutoModelForCausalLM.from_pretrained(merged)
    assert type(plain.model.layers[0].feed_forward.experts).__name__ == "Llama4TextExperts"
    with torch.no_grad():
        trained = adapted(ids()).logits
        assert torch.allclose(plain(ids()).logits, trained, atol=1e-5)
        base = AutoModelForCausalLM.from_pretrained(llama4[0])(ids()).logits
    assert not torch.allclose(trained, base, atol=1e-3)  # the adapter changed something
    assert (out / "adapter_config.json").exists()
