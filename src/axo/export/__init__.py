"""Exports of a trained model: merged LoRA (quantized exports come later)."""
