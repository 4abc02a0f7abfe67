"""Model loading: classes, config overrides, reinit vs from_pretrained, attention choices,
tokenizer fixes, and the end-of-turn check."""

import pytest
import torch
from safetensors.torch import load_file

from axo.config import validate
from axo.errors import AxoError, ConfigError
from axo.data.chat import setup_chat
from axo.model.checks import align_end_tokens
from axo.model.loader import load_model
from axo.model.preflight import attention_backend, check_backends, liger_available
from axo.model.tokenizer import load_tokenizer

X = torch.tensor([[0, 5, 6, 7, 8]])


def test_from_pretrained_loads_the_saved_weights(make_config, tiny_model):
    model = load_model(make_config(), "fp32")
    saved = load_file(tiny_model / "model.safetensors")
    assert torch.equal(model.state_dict()["model.layers.0.mlp.up_proj.weight"], saved["model.layers.0.mlp.up_proj.weight"])


def test_a_missing_gguf_file_names_the_key_and_the_fix(make_config, tmp_path):
    with pytest.raises(AxoError, match=r"`base_model`: the GGUF file .*missing.gguf' does not exist. Fix: the path"):
        load_tokenizer(make_config(base_model=str(tmp_path / "missing.gguf")))
    with pytest.raises(AxoError, match="missing.gguf' does not exist"):
        load_model(make_config(base_model=str(tmp_path), gguf_file="missing.gguf"), "fp32")


def test_reinit_builds_fresh_seeded_weights(make_config, tiny_model):
    a = load_model(make_config(reinit_weights=True, seed=3), "fp32")
    b = load_model(make_config(reinit_weights=True, seed=3), "fp32")
    saved = load_file(tiny_model / "model.safetensors")
    name = "model.layers.0.mlp.up_proj.weight"
    assert torch.equal(a.state_dict()[name], b.state_dict()[name])
    assert not torch.equal(a.state_dict()[name], saved[name])


def test_sequence_classification_head(make_config):
    cfg = make_config(model_type="AutoModelForSequenceClassification", num_labels=3, reward_model=True,
                      datasets=[{"path": "pairs.jsonl", "type": "chat_template.default"}])
    model = load_model(cfg, "fp32")
    assert type(model).__name__ == "LlamaForSequenceClassification"
    assert model(X).logits.shape == (1, 3)


def test_model_specific_class_and_config_overrides(make_config):
    model = load_model(make_config(model_type="LlamaForCausalLM", model_config={"rope_theta": 1234.0}), "fp32")
    assert type(model).__name__ == "LlamaForCausalLM"
    assert model.config.rope_theta == 1234.0


def test_unknown_classes_are_clear_errors(make_config):
    with pytest.raises(AxoError, match="`model_type`: transformers .* has no class 'NopeForCausalLM'"):
        load_model(make_config(model_type="NopeForCausalLM"), "fp32")
    with pytest.raises(ConfigError, match="model class 'AutoModelForSeq2SeqLM' is not supported yet"):
        make_config(model_type="AutoModelForSeq2SeqLM")
    with pytest.raises(ConfigError, match="`num_labels`: needs a classification `model_type`"):
        make_config(num_labels=2)


def test_legacy_attention_flags_are_aliases():
    base = {"base_model": "m", "datasets": [{"path": "d", "type": "alpaca"}]}
    assert validate({**base, "sdp_attention": True}).model.attn_implementation == "sdpa"
    assert validate({**base, "flash_attention": True}).model.attn_implementation == "flash_attention_2"
    assert validate({**base, "eager_attention": True, "flash_attention": False}).model.attn_implementation == "eager"
    with pytest.raises(ConfigError, match="`flash_attention`, `attn_implementation` choose different attention"):
        validate({**base, "flash_attention": True, "attn_implementation": "eager"})
    with pytest.raises(ConfigError, match="unknown attention backend 'fast'"):
        validate({**base, "attn_implementation": "fast"})
    assert "flash_attention" not in validate({**base, "flash_attention": True}).to_flat()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallback")
def test_gpu_only_kernels_fall_back_to_the_same_math_on_cpu(make_config, caplog):
    """Axolotl's GPU configs (flash_attention_2, Liger) train on a CPU: the kernels only buy speed."""
    attention_backend.cache_clear()
    liger_available.cache_clear()
    for backend in ("flash_attention_2", "flex_attention", "kernels-community/flash-attn"):
        assert attention_backend(backend) == "sdpa"
    assert attention_backend("eager") == "eager"
    assert "needs a CUDA GPU; training with sdpa, which computes the same attention" in caplog.text
    assert liger_available(True) is False and "training without Liger's kernels" in caplog.text
    flash = load_model(make_config(attn_implementation="flash_attention_2"), "fp32")
    assert flash.config._attn_implementation == "sdpa"
    torch.testing.assert_close(flash(X).logits, load_model(make_config(), "fp32")(X).logits)


def test_an_optimizer_whose_package_is_missing_is_named(make_config):
    with pytest.raises(AxoError, match="`optimizer: adamw_anyprecision` needs `pip install torchdistx`"):
        check_backends(make_config(optimizer="adamw_anyprecision"))  # not on PyPI, so never installed here
    with pytest.raises(AxoError, match="`optimizer: adalomo` runs only on a CUDA GPU"):
        check_backends(make_config(optimizer="adalomo"))
    check_backends(make_config(optimizer="adamw_torch_8bit"))


def test_eager_and_sdpa_agree(make_config):
    eager = load_model(make_config(attn_implementation="eager"), "fp32")(X).logits
    sdpa = load_model(make_config(attn_implementation="sdpa"), "fp32")(X).logits
    torch.testing.assert_close(eager, sdpa, atol=1e-5, rtol=0)


def test_tokens_and_special_tokens(make_config):
    cfg = make_config(tokens=["<|new1|>", "<|new2|>"], special_tokens={"pad_token": "<|pad|>"})
    tokenizer = load_tokenizer(cfg)
    assert tokenizer.pad_token == "<|pad|>" and tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer.convert_tokens_to_ids("<|new2|>") == len(tokenizer) - 1  # after the new pad token
    model = load_model(cfg, "fp32", tokenizer)
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)
    assert model.config.pad_token_id == tokenizer.pad_token_id


def test_added_tokens_overrides(make_config):
    tokenizer = load_tokenizer(make_config(added_tokens_overrides={1: "<|end|>"}, special_tokens={"eos_token": "<|end|>"}))
    assert tokenizer.convert_ids_to_tokens(1) == "<|end|>" and tokenizer.eos_token_id == 1
    assert tokenizer("a<|end|>", add_special_tokens=False)["input_ids"][-1] == 1
    with pytest.raises(AxoError, match="ids \\[200\\] are not added tokens"):
        load_tokenizer(make_config(added_tokens_overrides={200: "x"}))


def test_vision_config_needs_a_multimodal_class(make_config, tmp_path):
    from transformers import AutoConfig, LlavaConfig

    folder = tmp_path / "vlm"
    LlavaConfig(text_config=AutoConfig.from_pretrained(make_config().model.base_model).to_dict()).save_pretrained(folder)
    with pytest.raises(AxoError, match="multimodal model .llava. that reads images or audio.*AutoModelForMultimodalLM"):
        load_model(make_config(base_model=str(folder)), "fp32")


def test_end_of_turn_is_added_to_generation_config(make_config, tmp_path):
    chat = {"datasets": [{"path": "x", "type": "chat_template"}], "chat_template": "chatml"}
    cfg = make_config(**chat, special_tokens={"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer = load_tokenizer(cfg)
    stop = setup_chat(cfg, tokenizer).stop_tokens
    assert stop == ("</s>", "<|im_end|>")
    model = load_model(cfg, "fp32", tokenizer)
    assert align_end_tokens(tokenizer, model, stop) == []
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert set(model.generation_config.eos_token_id) == {tokenizer.eos_token_id, im_end}
    cfg = make_config(**chat)  # <|im_end|> is not a token of this vocabulary
    tokenizer = load_tokenizer(cfg)
    [warning] = align_end_tokens(tokenizer, load_model(cfg, "fp32", tokenizer), setup_chat(cfg, tokenizer).stop_tokens)
    assert "'<|im_end|>' is not one token" in warning and "additional_special_tokens" in warning
