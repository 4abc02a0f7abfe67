"""Fold a LoRA adapter into its base model: a plain transformers model in output_dir/merged."""

from pathlib import Path

from axo.config import Config
from axo.errors import AxoError


def merge_lora(cfg: Config, checkpoint: str | None = None) -> Path:
    from axo.model.loader import load_for_inference

    folder = Path(checkpoint or cfg.train.output_dir)
    if not (folder / "adapter_config.json").exists():
        raise AxoError(f"{folder} holds no LoRA adapter (adapter_config.json). Train with "
                       "`adapter: lora` first, or pass --checkpoint to the adapter's folder.")
    model, tokenizer, _ = load_for_inference(cfg, str(folder))
    merged = model.merge_and_unload()
    out = Path(cfg.train.output_dir) / "merged"
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
