"""Post-training quantization with torchao: the trained model (an adapter is merged first) as a
quantized transformers model in output_dir/quantized, which loads with plain `from_pretrained`
(its config.json carries the TorchAoConfig) and generates on CPU."""

import gc
import logging
import shutil
import tempfile
import warnings
from pathlib import Path

from axo.config import Config
from axo.errors import AxoError

log = logging.getLogger("axo")
QUANTIZED = "quantized"


def quantize_model(cfg: Config, model_dir: str | None = None) -> Path:
    """Quantize the model in `model_dir` (default: the trained model in output_dir, else
    base_model) with the `quantization:` block's scheme (else the one `qat:` trained for)."""
    from axo.model.loader import model_class
    from axo.model.preflight import resolve_precision, torch_dtype
    from axo.model.quantization import to_torchao_export_config

    scheme = cfg.quant.export_scheme
    if scheme is None:
        raise AxoError("nothing says how to quantize: add a `quantization:` block, e.g. "
                       "`quantization: {weight_dtype: int4, group_size: 32}`.")
    if cfg.quant.quantization and cfg.quant.qat and cfg.quant.quantization != _scheme_of(cfg.quant.qat):
        log.warning("`quantization:` differs from the scheme `qat:` trained for; writing `quantization:`'s")
    out = Path(cfg.train.output_dir) / QUANTIZED
    with tempfile.TemporaryDirectory(prefix="axo-quantize-") as staging:
        model, tokenizer, what = _full_precision(cfg, model_dir)
        embedding_name = _module_name(model, model.get_input_embeddings())
        if scheme.quantize_embedding:
            _untie_head(model)
        model.save_pretrained(staging)
        del model
        gc.collect()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*_default is deprecated.*")
            quantized = model_class(cfg).from_pretrained(
                staging, dtype=torch_dtype(resolve_precision(cfg.model)),
                quantization_config=to_torchao_export_config(scheme, embedding_name))
    if out.exists():
        log.info("Replacing the earlier quantized model in %s", out)
        shutil.rmtree(out)
    quantized.save_pretrained(out)
    tokenizer.save_pretrained(out)
    log.info("Quantized the %s to %s weights%s: %s", what, scheme.weight_dtype,
             " and int8 activations" if scheme.activation_dtype else "", out)
    return out


def _full_precision(cfg: Config, model_dir: str | None):
    """(model, tokenizer, description) in full precision, an adapter merged into its base."""
    from axo.export.merge import load_merged
    from axo.model.loader import holds_adapter, load_for_inference, trained_model_dir

    folder = trained_model_dir(cfg, model_dir)
    if folder is not None and holds_adapter(folder):
        model, tokenizer = load_merged(cfg, folder)
        return model, tokenizer, f"{cfg.model.base_model} with the adapter in {folder} merged"
    return load_for_inference(cfg, model_dir, quantize=False)


def _scheme_of(qat):
    from axo.config.quantization import TORCHAO_WEIGHTS, TorchAOScheme

    if qat.weight_dtype not in TORCHAO_WEIGHTS:
        return None  # FP4 / ternary: no torchao copy to compare with
    return TorchAOScheme(**qat.model_dump(exclude={"fake_quant_after_n_steps"}))


def _module_name(model, module) -> str:
    return next(name for name, m in model.named_modules() if m is module)


def _untie_head(model) -> None:
    """Give the output head its own copy of the embedding matrix: the two are quantized
    differently (the head as a linear layer), and transformers cannot re-tie quantized weights."""
    import torch

    head = model.get_output_embeddings()
    if head is None or head.weight is not model.get_input_embeddings().weight:
        return
    head.weight = torch.nn.Parameter(head.weight.detach().clone())
    model.config.tie_word_embeddings = False
    text = model.config.get_text_config() if hasattr(model.config, "get_text_config") else None
    if text is not None:
        text.tie_word_embeddings = False
