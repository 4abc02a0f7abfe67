"""Other data paths end to end: a chat model trained with ChatML, and streamed pretraining."""

import json
import os
import subprocess
import sys
from pathlib import Path

from transformers import AutoTokenizer

from axo.data.templates import CHATML
from axo.infer.generate import load_generator
from axo.train.sft import train
from conftest import EXAMPLES, read_log_history


def test_chat_template_training_saves_the_template_and_inference_uses_it(make_config, tmp_path):
    rows = [json.loads(line) for line in (EXAMPLES / "data" / "sort_train.jsonl").read_text().splitlines()[:32]]
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps({"conversations": [
        {"from": "human", "value": r["instruction"]}, {"from": "gpt", "value": r["output"]}]}) + "\n"
        for r in rows))
    cfg = make_config(
        datasets=[{"path": str(path), "type": "chat_template", "field_messages": "conversations",
                   "message_property_mappings": {"role": "from", "content": "value"}}],
        chat_template="chatml", max_steps=4)
    train(cfg)
    out = Path(cfg.train.output_dir)
    assert AutoTokenizer.from_pretrained(out).chat_template == CHATML
    losses = [e["loss"] for e in read_log_history(out) if "loss" in e]
    assert len(losses) == 4

    gen = load_generator(cfg)
    ids = gen.encode("Sort the digits: 2 1")["input_ids"][0].tolist()
    assert gen.tokenizer.decode(ids) == "<|im_start|>user\nSort the digits: 2 1<|im_end|>\n<|im_start|>assistant\n"


def test_streamed_pretraining_dataset(make_config, tmp_path):
    text = (EXAMPLES / "data" / "sort_train.jsonl").read_text().splitlines()[:200]
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"content": line}) + "\n" for line in text))
    cfg = make_config(datasets=None, pretraining_dataset=[{"path": str(path), "text_column": "content"}],
                      sequence_len=64, max_steps=3, micro_batch_size=2)
    train(cfg)
    losses = [e["loss"] for e in read_log_history(cfg.train.output_dir) if "loss" in e]
    assert len(losses) == 3


def test_preprocess_debug_shows_trained_and_masked_tokens(make_config, tmp_path):
    import yaml

    cfg = make_config()
    path = tmp_path / "cfg.yml"
    path.write_text(yaml.safe_dump(cfg.to_flat()))
    run = subprocess.run([sys.executable, "-m", "axo", "preprocess", str(path), "--debug", "--rows", "1"],
                         capture_output=True, text=True, env={**os.environ, "FORCE_COLOR": "1", "COLUMNS": "200"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert "── row 0" in run.stdout and "rows in" in run.stdout
    green, red = "\x1b[32m", "\x1b[2;31m"
    assert f"{green}</s>" in run.stdout  # the EOS is trained
    assert f"{red}<s>" in run.stdout  # the BOS is not
