"""PEFT adapters on the loaded model."""

from axo.config.adapter import AdapterConfig


def to_lora_config(a: AdapterConfig):
    from peft import LoraConfig, TaskType

    return LoraConfig(
        r=a.lora_r,
        lora_alpha=a.lora_alpha,
        lora_dropout=a.lora_dropout,
        target_modules="all-linear" if a.lora_target_linear else a.lora_target_modules,
        task_type=TaskType.CAUSAL_LM,
    )


def apply_adapter(model, a: AdapterConfig, gradient_checkpointing: bool = False):
    """The model to train: itself for a full fine-tune, or wrapped in a PEFT adapter."""
    if a.adapter is None:
        return model
    from peft import get_peft_model

    if gradient_checkpointing:
        # Frozen embeddings give checkpointed blocks inputs without grad; LoRA would get none.
        model.enable_input_require_grads()
    return get_peft_model(model, to_lora_config(a))
