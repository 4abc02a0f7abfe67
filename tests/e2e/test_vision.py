"""Image-text-to-text on a tiny random Llava (CLIP vision tower + Llama, make_tiny_multimodal.llava):
only the assistant's answer is trained, lengths are measured after the processor's expansion, and
the vision side stays as loaded when asked. The other families, and that each learns and reloads:
test_multimodal_families.py."""

from pathlib import Path

import pytest
import torch

from axo.data.tokenize import IGNORE
from axo.train.sft import train
from make_tiny_multimodal import llava, write_colour_rows


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-llava")
    llava(folder)
    return folder


@pytest.fixture
def colour_rows(tmp_path) -> Path:
    return write_colour_rows(tmp_path)


def test_labels_cover_only_the_answer_across_image_tokens(make_config, tiny_vlm, colour_rows):
    from axo.data.batches import trainer_inputs
    from axo.data.chat import load_processing
    from axo.data.prepare import prepare

    cfg = make_config(base_model=str(tiny_vlm), model_type="AutoModelForMultimodalLM",
                      datasets=[{"path": str(colour_rows), "type": "chat_template"}], shuffle_merged_datasets=False)
    text = load_processing(cfg)
    data = prepare(cfg, text.tokenizer, text.chat, text.processor)
    collator, processor = trainer_inputs(cfg, data, text).collator, text.processor
    whole = collator(list(data.train))
    # the lengths preparation measured are those of the processor's expansion at batching time
    assert data.stats[0]["len_max"] == whole["attention_mask"].sum(1).max()
    assert data.stats[0]["trained_tokens"] == (whole["labels"] != IGNORE).sum()
    batch = collator([data.train[0], data.train[1]])
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    assert (batch["input_ids"][0] == image_id).sum() == 4  # one token per 8x8 patch of a 16x16 image
    trained = [processor.tokenizer.decode(ids[labels != IGNORE]) for ids, labels in zip(batch["input_ids"], batch["labels"])]
    assert trained == ["red<|im_end|>", "blue<|im_end|>"]
    assert batch["pixel_values"].shape == (2, 3, 16, 16)


@pytest.mark.parametrize("adapter", [None, "lora"])
def test_freeze_mm_modules_keeps_the_vision_side_as_loaded(make_config, tiny_vlm, colour_rows, adapter):
    from transformers import AutoModelForMultimodalLM

    lora = {"adapter": "lora", "lora_r": 4, "lora_alpha": 8, "lora_target_linear": True} if adapter else {}
    cfg = make_config(base_model=str(tiny_vlm), model_type="AutoModelForMultimodalLM", freeze_mm_modules=True,
                      datasets=[{"path": str(colour_rows), "type": "chat_template"}], max_steps=3,
                      micro_batch_size=4, learning_rate=1e-2, **lora)
    train(cfg)
    out = Path(cfg.train.output_dir)
    if adapter:
        from peft import PeftModel

        trained = PeftModel.from_pretrained(AutoModelForMultimodalLM.from_pretrained(tiny_vlm), out).merge_and_unload()
    else:
        trained = AutoModelForMultimodalLM.from_pretrained(out)
    before = dict(AutoModelForMultimodalLM.from_pretrained(tiny_vlm).named_parameters())
    after = dict(trained.named_parameters())
    vision = [n for n in before if "vision_tower" in n or "multi_modal_projector" in n]
    language = [n for n in before if "language_model" in n and n.endswith("proj.weight")]
    assert vision and all(torch.equal(before[n], after[n]) for n in vision)
    assert any(not torch.equal(before[n], after[n]) for n in language)


@pytest.mark.parametrize("targets", [{"lora_target_linear": True}, {"lora_target_modules": ["q_proj", "v_proj"]}])
def test_lora_adapts_the_language_model_unless_the_tower_is_named(make_config, tiny_vlm, targets):
    """`lora_target_linear` and leaf names match anywhere, so on a multimodal model
    they mean the language model; a dotted name or a regular expression reaches the vision tower."""
    from transformers import AutoModelForMultimodalLM

    from axo.model.adapters import apply_adapter

    def adapted(**keys) -> list[str]:
        cfg = make_config(base_model=str(tiny_vlm), model_type="AutoModelForMultimodalLM", adapter="lora", **keys,
                          datasets=[{"path": "x.jsonl", "type": "chat_template"}])
        model = apply_adapter(AutoModelForMultimodalLM.from_pretrained(tiny_vlm), cfg)
        return [n for n, p in model.named_parameters() if p.requires_grad]

    language = adapted(**targets)
    assert language and all("language_model" in n and "lora_" in n for n in language), language
    tower = adapted(lora_target_modules=r".*vision_tower.*\.(q|v)_proj")
    assert tower and all("vision_tower" in n for n in tower)
    both = adapted(lora_target_modules=["q_proj", "model.vision_tower.vision_model.encoder.layers.0.self_attn.v_proj"])
    assert {n.split(".")[3] for n in both} == {"language_model", "vision_tower"}


def test_unfrozen_parameters_under_an_adapter_keep_its_weights_on_the_language_side(make_config, tiny_vlm):
    """Axolotl's Gemma 3 QLoRA examples write `unfrozen_parameters: [^model.language_model.*, ^lm_head.*]`
    to freeze the vision tower: patterns on the base model's names choose which adapter weights train."""
    from transformers import AutoModelForMultimodalLM

    from axo.model.adapters import apply_adapter, base_name

    assert base_name("base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.default.weight") == \
        "model.language_model.layers.0.self_attn.q_proj.weight"
    cfg = make_config(base_model=str(tiny_vlm), model_type="AutoModelForMultimodalLM", adapter="lora",
                      lora_target_modules=r".*(language_model|vision_tower).*\.(q|v)_proj",
                      unfrozen_parameters=["^model.language_model.*", "^lm_head.*"],
                      datasets=[{"path": "x.jsonl", "type": "chat_template"}])
    model = apply_adapter(AutoModelForMultimodalLM.from_pretrained(tiny_vlm), cfg)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    vision_lora = [n for n, _ in model.named_parameters() if "vision_tower" in n and "lora_" in n]
    assert vision_lora, "LoRA reaches the vision tower without the patterns"
    assert trainable and all("language_model" in n and "lora_" in n for n in trainable)
