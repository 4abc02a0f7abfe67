"""The adapter family: trainable parameters match PEFT's own, training runs, saved adapters reload
with plain peft, QLoRA trains on CPU and merges, added tokens survive save -> reload -> merge."""

from pathlib import Path

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from axo.export.merge import merge_lora
from axo.model.adapters import apply_adapter, loraplus_optimizer
from axo.model.loader import load_model
from axo.train.sft import train
from conftest import read_log_history

LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
X = torch.tensor([[0, 5, 6, 7, 8, 9]])


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("keys,peft_kwargs", [
    ({}, {}),
    ({"peft_use_dora": True}, {"use_dora": True}),
    ({"peft_use_rslora": True}, {"use_rslora": True}),
    ({"lora_modules_to_save": ["embed_tokens"]}, {"modules_to_save": ["embed_tokens"]}),
    ({"peft_layers_to_transform": [1]}, {"layers_to_transform": [1]}),
], ids=["lora", "dora", "rslora", "modules_to_save", "layers_to_transform"])
def test_trainable_parameters_match_peft(make_config, keys, peft_kwargs):
    cfg = make_config(adapter="lora", lora_r=4, lora_alpha=8, lora_target_linear=True, **keys)
    ours = apply_adapter(load_model(cfg, "fp32"), cfg)
    theirs = get_peft_model(load_model(cfg, "fp32"), LoraConfig(r=4, lora_alpha=8, target_modules=LINEAR,
                                                               task_type="CAUSAL_LM", **peft_kwargs))
    assert trainable(ours) == trainable(theirs) > 0
    assert ours.peft_config["default"].use_dora == peft_kwargs.get("use_dora", False)


def test_dora_trains_and_reloads_in_plain_peft(make_config, tiny_model):
    cfg = make_config(adapter="lora", lora_target_linear=True, peft_use_dora=True, max_steps=6, learning_rate=1e-2)
    train(cfg)
    out = Path(cfg.train.output_dir)
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), out)
    assert reloaded.peft_config["default"].use_dora
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert not torch.allclose(reloaded(X).logits, base(X).logits, atol=1e-4)


def test_qlora_trains_on_cpu_and_merges(make_config, tiny_model_64):
    import bitsandbytes as bnb

    cfg = make_config(base_model=str(tiny_model_64), adapter="qlora", load_in_4bit=True, lora_target_linear=True,
                      max_steps=12, learning_rate=2e-2)
    quantized = load_model(cfg, "fp32")
    assert isinstance(quantized.model.layers[0].self_attn.q_proj, bnb.nn.Linear4bit)
    train(cfg)
    loss = [e["loss"] for e in read_log_history(cfg.train.output_dir) if "loss" in e]
    assert sum(loss[-3:]) < 0.9 * sum(loss[:3]), loss

    merged = AutoModelForCausalLM.from_pretrained(merge_lora(cfg))
    assert isinstance(merged.model.layers[0].self_attn.q_proj, torch.nn.Linear)  # plain, full precision
    adapter_model = PeftModel.from_pretrained(load_model(cfg, "fp32"), Path(cfg.train.output_dir))
    with torch.no_grad():
        merged_logits, adapter_logits = merged(X).logits, adapter_model(X).logits
    relative = ((merged_logits - adapter_logits).norm() / adapter_logits.norm()).item()
    # bitsandbytes' CPU 4-bit matmul rounds activations to bf16: that, not the merge, sets the floor
    assert relative < 2e-2, f"merged vs 4-bit adapter model logits differ by {relative:.2e}"


def test_added_tokens_survive_save_reload_and_merge(make_config, tiny_model):
    cfg = make_config(adapter="lora", lora_target_linear=True, tokens=["<|new1|>", "<|new2|>"],
                      max_steps=6, learning_rate=5e-2,
                      datasets=[{"path": make_config().data.datasets[0].path, "type": "alpaca"}])
    train(cfg)
    out = Path(cfg.train.output_dir)
    tokenizer = AutoTokenizer.from_pretrained(out)
    new_id = tokenizer.convert_tokens_to_ids("<|new2|>")
    assert new_id == 374 and len(tokenizer) == 375
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    base.resize_token_embeddings(len(tokenizer))
    adapted = PeftModel.from_pretrained(base, out)
    merged = AutoModelForCausalLM.from_pretrained(merge_lora(cfg))
    assert merged.get_input_embeddings().num_embeddings == len(tokenizer)
    ids = torch.tensor([[0, new_id, 5, 6]])
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, adapted(ids).logits, atol=1e-4, rtol=0)
    assert AutoTokenizer.from_pretrained(out / "merged").convert_tokens_to_ids("<|new2|>") == new_id


def test_new_token_rows_train_under_lora(make_config):
    cfg = make_config(adapter="lora", lora_target_linear=True, tokens=["<|new1|>"])
    from axo.model.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(cfg)
    model = apply_adapter(load_model(cfg, "fp32", tokenizer), cfg, new_token_ids=[373])
    names = [n for n, p in model.named_parameters() if p.requires_grad and "token_adapter" in n]
    assert names, "the new token's embedding row is not trainable"


def test_a_4_bit_base_is_not_taken_for_non_finite_weights(make_config, tiny_model_64):
    """bitsandbytes keeps a 4-bit base's packed bytes in a float tensor (the compute dtype), where some byte
    patterns read as NaN: the check before a checkpoint looks at the weights that train, and stopped QLoRA
    runs that were fine ("the weights became non-finite")."""
    import bitsandbytes as bnb

    from axo.train.callbacks import _finite

    cfg = make_config(base_model=str(tiny_model_64), adapter="qlora", load_in_4bit=True, lora_target_linear=True)
    model = apply_adapter(load_model(cfg, "fp32"), cfg)
    packed = next(m.weight for m in model.modules() if isinstance(m, bnb.nn.Linear4bit))
    assert packed.is_floating_point() and not packed.requires_grad
    packed.data.view(-1)[0] = float("nan")  # a byte pattern that reads as NaN, in the frozen base
    assert _finite(model)
    lora = next(p for n, p in model.named_parameters() if "lora_A" in n)
    with torch.no_grad():
        lora.view(-1)[0] = float("nan")
    assert not _finite(model)


def test_new_tokens_with_the_whole_embedding_saved_train_with_it(make_config):
    """Axolotl's common pairing: added tokens and `lora_modules_to_save: [embed_tokens, lm_head]`. The whole
    embedding trains, the new rows with it (peft refused a row adapter beside it: the run crashed)."""
    cfg = make_config(adapter="lora", lora_target_linear=True, tokens=["<|new1|>"],
                      lora_modules_to_save=["embed_tokens", "lm_head"])
    from axo.model.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(cfg)
    model = apply_adapter(load_model(cfg, "fp32", tokenizer), cfg, new_token_ids=[373])
    trained = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("embed_tokens.modules_to_save" in n for n in trained)
    assert not any("token_adapter" in n for n in trained)
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)


def test_continue_training_an_adapter(make_config, tmp_path):
    first = make_config(adapter="lora", lora_target_linear=True, max_steps=8, learning_rate=2e-2,
                        output_dir=str(tmp_path / "first"))
    train(first)
    second = make_config(adapter="lora", lora_target_linear=True, max_steps=2, learning_rate=2e-2,
                         lora_model_dir=first.train.output_dir, output_dir=str(tmp_path / "second"))
    train(second)
    first_loss = [e["loss"] for e in read_log_history(first.train.output_dir) if "loss" in e]
    second_loss = [e["loss"] for e in read_log_history(second.train.output_dir) if "loss" in e]
    assert second_loss[0] < first_loss[0] - 0.1  # it starts where the first run ended, not from scratch


def test_unfrozen_parameters_and_loraplus(make_config):
    cfg = make_config(unfrozen_parameters=[r"layers\.1\.mlp\..*", "norm"])
    model = apply_adapter(load_model(cfg, "fp32"), cfg)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "model.layers.1.mlp.up_proj.weight" in names and "model.norm.weight" in names
    assert "model.layers.0.mlp.up_proj.weight" not in names and "model.embed_tokens.weight" not in names

    cfg = make_config(adapter="lora", lora_target_linear=True, loraplus_lr_ratio=16)
    optimizer = loraplus_optimizer(apply_adapter(load_model(cfg, "fp32"), cfg), cfg)
    rates = sorted({g["lr"] for g in optimizer.param_groups if g["params"]})
    assert rates == [cfg.train.learning_rate, 16 * cfg.train.learning_rate]


def test_lora_on_a_torchao_int8_base_trains_and_merges(make_config, tiny_model_64):
    cfg = make_config(base_model=str(tiny_model_64), adapter="lora", lora_target_linear=True, max_steps=8,
                      learning_rate=2e-2, model_quantization_config="TorchAoConfig",
                      model_quantization_config_kwargs={"weight_dtype": "int8"})
    base = load_model(cfg, "fp32")
    assert type(base.model.layers[0].self_attn.q_proj.weight).__name__ == "Int8Tensor"
    train(cfg)
    losses = [e["loss"] for e in read_log_history(cfg.train.output_dir) if "loss" in e]
    assert losses[-1] < losses[0]
    merged = AutoModelForCausalLM.from_pretrained(merge_lora(cfg))
    assert type(merged.model.layers[0].self_attn.q_proj.weight.data) is torch.Tensor
    adapter_model = PeftModel.from_pretrained(load_model(cfg, "fp32"), Path(cfg.train.output_dir))
    with torch.no_grad():
        torch.testing.assert_close(merged(X).logits, adapter_model(X).logits, atol=1e-3, rtol=1e-3)


def test_dequantized_layers_take_the_models_dtype(make_config, tiny_model_64):
    """Merging a QLoRA adapter trained in bf16: the dequantized layers are bf16 like the rest of the
    model, not fp32 islands inside it."""
    from axo.export.merge import dequantize_by_probing

    cfg = make_config(base_model=str(tiny_model_64), adapter="qlora", load_in_4bit=True, lora_target_linear=True)
    model = load_model(cfg, "bf16")
    dequantize_by_probing(model)
    dtypes = {m.weight.dtype for m in model.modules() if isinstance(m, torch.nn.Linear)}
    assert dtypes == {torch.bfloat16} and model.get_input_embeddings().weight.dtype == torch.bfloat16
