"""What trains: a PEFT adapter on the loaded model, or the model itself (all of it, or the
parameters `unfrozen_parameters` names)."""

import logging
import re

from axo.config import Config
from axo.config.adapter import AdapterConfig
from axo.errors import AxoError

log = logging.getLogger("axo")
PEFT_TASKS = {"causal_lm": "CAUSAL_LM", "sequence_classification": "SEQ_CLS", "token_classification": "TOKEN_CLS",
              "multimodal_lm": "CAUSAL_LM"}


def to_lora_config(a: AdapterConfig, task: str, new_token_ids: list[int] = (), linear_names: list[str] = (),
                   tied_embeddings: bool = False, not_linear: list[str] = (), tower: list[str] = (),
                   embedding: str = "embed_tokens"):
    """`tower`: full names of linears LoRA leaves alone (a multimodal model's vision or audio side);
    `embedding`: the input embedding's module name. Where `lora_modules_to_save` trains that embedding
    whole, the added tokens' rows train with it (peft refuses a row adapter on it besides)."""
    whole = any(m == embedding or m.endswith("." + embedding) for m in a.lora_modules_to_save or ())
    from peft import LoraConfig

    targets, excluded = a.lora_target_modules, []
    if a.lora_target_linear:
        # peft's "all-linear" cannot be combined with layers_to_transform; explicit names can
        targets = list(linear_names) if a.peft_layers_to_transform else "all-linear"
        excluded = list(not_linear)
    excluded += tower
    return LoraConfig(
        exclude_modules=excluded or None,
        r=a.lora_r,
        lora_alpha=a.lora_alpha,
        lora_dropout=a.lora_dropout,
        target_modules=targets,
        modules_to_save=a.lora_modules_to_save,
        layers_to_transform=a.peft_layers_to_transform,
        use_dora=a.peft_use_dora,
        use_rslora=a.peft_use_rslora,
        # rows of tokens added to the vocabulary are trained, or they would stay at their init
        trainable_token_indices=None if whole else _token_rows(a.peft_trainable_token_indices, new_token_ids),
        # a trained copy of a tied embedding must stay tied to the output head
        ensure_weight_tying=tied_embeddings and bool(a.lora_modules_to_save or new_token_ids),
        task_type=PEFT_TASKS[task],
        target_parameters=a.lora_target_parameters,
        fan_in_fan_out=a.lora_fan_in_fan_out,
        alpha_pattern=a.lora_alpha_pattern or {},
        rank_pattern=a.lora_rank_pattern or {},
        layers_pattern=a.peft_layers_pattern,
        layer_replication=a.peft_layer_replication,
        **({} if a.peft_init_lora_weights is None else {"init_lora_weights": a.peft_init_lora_weights}),
    )


def tower_linears(model, task: str, a: AdapterConfig) -> list[str]:
    """Full names of the linears in a multimodal model's vision or audio modules, which LoRA leaves as
    loaded unless its targets say where they are: `lora_target_linear`, leaf names ("q_proj") and
    peft's defaults match anywhere, so they mean the language model; a dotted name or a regular
    expression over whole names reaches the tower when it names it."""
    import torch

    targets = a.lora_target_modules
    if task != "multimodal_lm" or not a.lora_target_linear and (
            isinstance(targets, str) or any("." in t for t in targets or ())):
        return []
    return [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)
            and any(part in MULTIMODAL_MODULES for part in name.split("."))]


def _token_rows(asked, new_token_ids) -> list[int] | dict | None:
    """The embedding rows trained in full: the ones asked for, and the rows of added tokens."""
    new = list(new_token_ids)
    if isinstance(asked, dict):  # per embedding module: the added tokens' rows go to the input embedding
        return asked
    rows = sorted(set(asked or []) | set(new))
    return rows or None


def linear_module_names(model) -> list[str]:
    """Leaf names of the linear layers LoRA can adapt: every nn.Linear (bitsandbytes' included)
    but the output head and `not_linear_names`."""
    import torch

    head, odd = model.get_output_embeddings(), set(not_linear_names(model))
    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                   if isinstance(module, torch.nn.Linear) and module is not head} - odd)


def not_linear_names(model) -> list[str]:
    """Leaf names of layers a model's own code derives from nn.Linear with a forward of its own, which
    are not linear layers to adapt: Llama 4's router returns (scores, logits), which LoRA cannot add
    to. Quantized and fake-quantized linears (bitsandbytes, torchao, QAT) stay adaptable."""
    import torch

    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                   if isinstance(module, torch.nn.Linear) and type(module).forward is not torch.nn.Linear.forward
                   and type(module).__module__.startswith("transformers.models.")})


def apply_adapter(model, cfg: Config, new_token_ids: list[int] = ()):
    """The model to train: itself (possibly partly frozen) for a full fine-tune, or wrapped in a
    PEFT adapter; with `freeze_mm_modules`, nothing of the vision or audio side trains."""
    model = _apply_adapter(model, cfg, new_token_ids)
    if cfg.lora.freeze_mm_modules:
        freeze_multimodal(model)
    return model


# Module names that hold a multimodal model's encoders and projectors (Llava, Qwen2-VL, Gemma 3,
# mllama, Idefics3's `connector`, Qwen2-Audio, Voxtral...): a parameter trains with `freeze_mm_modules`
# only if none is in its path.
MULTIMODAL_MODULES = ("vision_tower", "vision_model", "vision_encoder", "embed_vision", "multi_modal_projector",
                      "connector", "visual", "audio_tower", "audio_model", "embed_audio")


def freeze_multimodal(model) -> int:
    frozen, found = 0, False
    for name, param in model.named_parameters():
        if any(part in MULTIMODAL_MODULES for part in name.split(".")):
            found = True
            frozen += param.numel() if param.requires_grad else 0
            param.requires_grad = False
    if not found:
        raise AxoError("`freeze_mm_modules`: this model has no vision or audio modules (none named "
                       + ", ".join(MULTIMODAL_MODULES) + "). Fix: remove the key.")
    log.info("freeze_mm_modules: %s parameters of the vision/audio modules stay as loaded", f"{frozen:,}")
    return frozen


def _apply_adapter(model, cfg: Config, new_token_ids: list[int] = ()):
    a = cfg.lora
    if a.adapter is None:
        if a.unfrozen_parameters:
            freeze_except(model, a.unfrozen_parameters)
        return model
    model = _wrap_in_adapter(model, cfg, new_token_ids)
    if a.unfrozen_parameters:  # Axolotl's "freeze the vision tower" spelling under an adapter
        freeze_except(model, a.unfrozen_parameters, only_trainable=True)
    return model


def _wrap_in_adapter(model, cfg: Config, new_token_ids):
    a = cfg.lora
    checkpointing = bool(cfg.train.gradient_checkpointing)
    from peft import PeftModel, get_peft_model, prepare_model_for_kbit_training

    if cfg.quant.bitsandbytes:
        # fp32 norms and input grads for checkpointing, as QLoRA needs on a quantized base
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
    elif checkpointing:
        # Frozen embeddings give checkpointed blocks inputs without grad; LoRA would get none.
        model.enable_input_require_grads()
    if a.lora_model_dir:
        log.info("Continuing training of the adapter in %s", a.lora_model_dir)
        return PeftModel.from_pretrained(model, a.lora_model_dir, is_trainable=True)
    tied = bool(getattr(model.config, "tie_word_embeddings", False)) and model.get_output_embeddings() is not None
    tower = tower_linears(model, cfg.model.task, a)
    if tower:
        log.info("LoRA adapts the language model; the %d linear layers of the vision/audio modules stay as "
                 "loaded (to adapt them, name them by path in lora_target_modules)", len(tower))
    embedding = next(name for name, module in model.named_modules() if module is model.get_input_embeddings())
    return get_peft_model(model, to_lora_config(a, cfg.model.task, new_token_ids, linear_module_names(model), tied,
                                                not_linear_names(model), tower, embedding.rsplit(".", 1)[-1]))


# What peft puts into a parameter's name: its wrapper's prefix and the adapter's own pieces.
PEFT_PREFIX = "base_model.model."
PEFT_PARTS = re.compile(r"\.(lora_A|lora_B|lora_embedding_A|lora_embedding_B|lora_magnitude_vector|modules_to_save|"
                        r"original_module|base_layer)(\.default)?(?=\.|$)")


def base_name(name: str) -> str:
    """A parameter's name as in the base model: `base_model.model.x.q_proj.lora_A.default.weight` ->
    `x.q_proj.weight`, so patterns written for the model match its adapter's weights too."""
    return PEFT_PARTS.sub("", name.removeprefix(PEFT_PREFIX))


def freeze_except(model, patterns: list[str], only_trainable: bool = False) -> None:
    """Train only the parameters whose base-model name matches a pattern; `only_trainable`: among
    those that train already (an adapter's), so a frozen base weight is never unfrozen."""
    compiled = [re.compile(p) for p in patterns]
    trainable = 0
    for name, param in model.named_parameters():
        if only_trainable and not param.requires_grad:
            continue
        param.requires_grad = any(p.search(base_name(name)) for p in compiled)
        trainable += param.requires_grad
    if trainable == 0:
        raise AxoError(f"`unfrozen_parameters` {patterns} match no parameter. Parameter names look like "
                       f"{base_name(next(iter(dict(model.named_parameters()))))!r}.")
    log.info("unfrozen_parameters: %d parameter tensors train, the rest are frozen", trainable)


def loraplus_optimizer(model, cfg: Config):
    """LoRA+: the B matrices learn `loraplus_lr_ratio` times faster than A. None when unused."""
    if not cfg.lora.loraplus_lr_ratio:
        return None
    import torch
    from peft.optimizers import create_loraplus_optimizer

    t = cfg.train  # (an AdamW `optimizer`: a config rule)
    betas = (t.adam_beta1 or 0.9, t.adam_beta2 or 0.999)
    return create_loraplus_optimizer(
        model=model, optimizer_cls=torch.optim.AdamW, lr=t.learning_rate, loraplus_lr_ratio=cfg.lora.loraplus_lr_ratio,
        loraplus_lr_embedding=cfg.lora.loraplus_lr_embedding, weight_decay=t.weight_decay, betas=betas,
        eps=t.adam_epsilon or 1e-8,
    )
