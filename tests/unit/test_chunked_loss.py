"""chunked_cross_entropy goes through what the model really runs: peft's wrappers around the output
head, the model's logit scaling and soft-capping, and activation offloading around it. Each case:
the loss and every trainable gradient equal those of the plain loss, and the head's trainable copy
really receives gradient."""

import shutil

import pytest
import torch

from axo.data.chat import setup_chat
from axo.data.collator import Collator
from axo.model.build import trainable_model
from axo.model.tokenizer import load_tokenizer
from conftest import EXAMPLES

ROWS = [{"input_ids": [0, 5, 6, 7, 8, 9, 10], "labels": [-100, -100, -100, 7, 8, 9, 10]},
        {"input_ids": [0, 11, 12, 13, 372], "labels": [-100, -100, 12, 13, 372]}]


def loss_and_grads(make_config, **keys):
    cfg = make_config(**keys)
    tokenizer = load_tokenizer(cfg)
    torch.manual_seed(0)  # the same adapter init with and without the chunked loss
    model = trainable_model(cfg, "fp32", tokenizer, setup_chat(cfg, tokenizer).stop_tokens)
    model.train()
    batch = Collator(0)(ROWS)
    n = int((batch["labels"][:, 1:] != -100).sum())
    loss = model(**batch, num_items_in_batch=torch.tensor(n)).loss
    loss.backward()
    return loss.detach(), {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad}


def assert_same(make_config, head_copy: str, **keys):
    plain_loss, plain = loss_and_grads(make_config, **keys)
    loss, grads = loss_and_grads(make_config, chunked_cross_entropy=True, chunked_cross_entropy_num_chunks=3, **keys)
    torch.testing.assert_close(loss, plain_loss, rtol=1e-5, atol=0)
    assert grads.keys() == plain.keys()
    for name in plain:
        torch.testing.assert_close(grads[name], plain[name], rtol=1e-4, atol=1e-7, msg=name)
    trained_head = [name for name in grads if head_copy in name]
    assert trained_head and any(grads[name].abs().sum() > 0 for name in trained_head), trained_head


LORA = {"adapter": "lora", "lora_target_modules": ["q_proj"]}


def test_a_trained_copy_of_the_head_gets_its_gradient(make_config):
    assert_same(make_config, "modules_to_save", lora_modules_to_save=["lm_head"], **LORA)


def test_lora_on_the_head(make_config):
    assert_same(make_config, "lm_head.lora_", **{**LORA, "lora_target_modules": ["q_proj", "lm_head"]})


def test_trainable_rows_of_a_tied_head(make_config):
    assert_same(make_config, "trainable_tokens", tokens=["<new-token>"], **LORA)


def test_with_activation_offloading_on(make_config):
    assert_same(make_config, "embed_tokens", gradient_checkpointing="offload")


@pytest.fixture(params=["cohere", "granite", "gemma2"])
def scaled_model(request, tmp_path_factory):
    """Tiny models whose forward scales or soft-caps the logits."""
    import transformers

    folder = tmp_path_factory.mktemp(request.param)
    shapes = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "head_dim": 8, "vocab_size": 373}
    config = {"cohere": lambda: transformers.CohereConfig(logit_scale=0.5, **shapes),
              "granite": lambda: transformers.GraniteConfig(logits_scaling=4.0, **shapes),
              "gemma2": lambda: transformers.Gemma2Config(final_logit_softcapping=2.0, **shapes)}[request.param]()
    torch.manual_seed(0)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(EXAMPLES / "tiny-llama" / name, folder / name)
    return folder, "eager" if request.param == "gemma2" else "sdpa"  # Gemma 2 has no sdpa path


def test_logit_scaling_and_soft_capping(make_config, scaled_model):
    folder, attention = scaled_model
    assert_same(make_config, "embed_tokens", base_model=str(folder), attn_implementation=attention)
