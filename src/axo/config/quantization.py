"""Quantization: loading the base model's weights quantized (bitsandbytes for QLoRA and 8-bit
LoRA, or torchao weight-only), training for a quantized deployment (`qat:`), and writing a
quantized copy of the trained model (`quantization:`)."""

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from axo.config.base import Area

TORCHAO_WEIGHTS = ("int8", "int4")
# Formats QAT trains for but axo writes no quantized copy of: FP4 layouts run only on FP4 GPUs,
# and no torchao layout stores ternary weights (see model/qat.py).
QAT_ONLY_WEIGHTS = ("nvfp4", "mxfp4", "ternary")
# Axolotl's other torchao dtypes need GPU kernels (float8) or prototype formats (nvfp4, mxfp4).
LATER_DTYPES = ("float8_e4m3fn", "nvfp4", "mxfp4", "int4wo")
# The block each FP4 format shares one scale over: fixed by the format.
FP4_BLOCK = {"nvfp4": 16, "mxfp4": 32}


class TorchAOScheme(Area):
    """The `quantization:` block: how the quantized copy in output_dir/quantized is made."""

    weights: ClassVar[tuple] = TORCHAO_WEIGHTS
    activations: ClassVar[tuple] = ("int8",)

    weight_dtype: str = Field("int8", description="int4 or int8 weights.")
    activation_dtype: str | None = Field(
        None, description="int8: also quantize activations (dynamically, per token); null: weights only.")
    group_size: int | None = Field(
        32, ge=1, description="Weights share one scale per group of this many input columns; null: one per "
        "output row. Must divide every quantized layer's input width.")
    quantize_embedding: bool = Field(
        False, description="Also quantize the input embedding (weights only) and the output head.")

    @field_validator("weight_dtype", "activation_dtype")
    @classmethod
    def _supported_dtype(cls, value, info):
        allowed = cls.weights if info.field_name == "weight_dtype" else cls.activations
        if value is None or value in allowed:
            return value
        later = " (it needs kernels axo does not drive yet)" if value in LATER_DTYPES else ""
        if value in QAT_ONLY_WEIGHTS and cls is TorchAOScheme:
            later = " for the quantized copy (`qat:` trains for it; quantize with the serving stack's tool)"
        raise ValueError(f"{value!r} is not supported by axo{later}; use " + " or ".join(allowed)
                         + ("" if info.field_name == "weight_dtype" else ", or null for weight-only"))


class QATScheme(TorchAOScheme):
    """The `qat:` block: train with the scheme's rounding simulated (fake quantization), so the
    weights learn to survive it; for int4/int8 the quantized copy is written at the end."""

    weights: ClassVar[tuple] = TORCHAO_WEIGHTS + QAT_ONLY_WEIGHTS
    activations: ClassVar[tuple] = ("int8", "nvfp4", "mxfp4")

    weight_dtype: str = Field(
        "int8", description="int4 or int8 (torchao; the quantized copy is written at the end), nvfp4 or mxfp4 "
        "(FP4 in blocks of 16 / 32 weights), or ternary (each row's weights rounded to -1, 0 or 1 times the row's "
        "mean magnitude, as BitNet b1.58).")
    activation_dtype: str | None = Field(
        None, description="int8 (per token), nvfp4 / mxfp4 (with weights of the same format), or null: weights only.")

    fake_quant_after_n_steps: int | None = Field(
        None, ge=0, description="Train this many steps in full precision before fake quantization starts.")

    def check(self):
        weights, acts = self.weight_dtype, self.activation_dtype
        fp4 = weights in FP4_BLOCK
        if acts in FP4_BLOCK and acts != weights:
            yield ("activation_dtype",), f"{acts} activations go with {acts} weights; use null or int8"
        elif fp4 and acts not in (None, weights):
            yield ("activation_dtype",), f"{weights} weights go with {weights} activations or null (weights only)"
        if fp4 and "group_size" in self.model_fields_set and self.group_size not in (None, FP4_BLOCK[weights]):
            yield ("group_size",), (f"{weights} shares one scale per {FP4_BLOCK[weights]} weights, fixed by the "
                                    f"format: set `group_size: {FP4_BLOCK[weights]}` or null")
        if weights == "ternary" and "group_size" in self.model_fields_set and self.group_size:
            yield ("group_size",), "ternary weights have one scale per row; remove `group_size`"
        if fp4 and self.quantize_embedding:
            yield ("quantize_embedding",), (f"axo rounds only linear layers to {weights}; set it false (ternary "
                                            "and int4/int8 QAT quantize the embedding)")


class QuantizationConfig(Area):
    load_in_8bit: bool = Field(False, description="Load linear weights in 8 bits (bitsandbytes LLM.int8).")
    load_in_4bit: bool = Field(False, description="Load linear weights in 4 bits (bitsandbytes NF4), for QLoRA.")
    bnb_config_kwargs: dict[str, Any] | None = Field(
        None, description="Extra BitsAndBytesConfig arguments, e.g. {bnb_4bit_quant_type: fp4, "
        "bnb_4bit_use_double_quant: false, llm_int8_skip_modules: [lm_head]}."
    )
    gptq: bool = Field(
        False, description="base_model is a GPTQ checkpoint: transformers loads it with its own quantization "
        "config (a CUDA GPU and `pip install gptqmodel`); LoRA trains on top of it.")
    model_quantization_config: Literal["TorchAoConfig", "Mxfp4Config", "FineGrainedFP8Config"] | None = Field(
        None, description="transformers quantization config for loading: TorchAoConfig (weight-only, torchao)."
    )
    model_quantization_config_kwargs: dict[str, Any] | None = Field(
        None, description="TorchAoConfig: {weight_dtype: int8 | int4, group_size: 128} (int4 needs a GPU)."
    )

    qat: QATScheme | None = Field(None, description="Quantization-aware training (torchao).")
    quantization: TorchAOScheme | None = Field(
        None, description="Write a quantized copy of the trained model to output_dir/quantized (torchao).")

    def check(self):
        chosen = [k for k in ("gptq", "load_in_8bit", "load_in_4bit") if getattr(self, k)]
        chosen += ["model_quantization_config"] if self.quantized and self.model_quantization_config else []
        if len(chosen) > 1:
            yield (chosen[-1],), f"{', '.join(f'`{k}`' for k in chosen)} each quantize the base; keep one"
        if self.model_quantization_config == "Mxfp4Config" and not self.dequantizes:
            yield ("model_quantization_config",), ("MXFP4 weights train only dequantized: set "
                                                   "`model_quantization_config_kwargs: {dequantize: true}`")
        elif self.model_quantization_config == "FineGrainedFP8Config":
            yield ("model_quantization_config",), (f"`{self.model_quantization_config}` is not supported by axo "
                                                   "yet; TorchAoConfig is")
        elif self.model_quantization_config == "TorchAoConfig":
            kwargs = self.model_quantization_config_kwargs or {}
            unknown = set(kwargs) - {"weight_dtype", "group_size"}
            if unknown or kwargs.get("weight_dtype", "int8") not in TORCHAO_WEIGHTS:
                yield ("model_quantization_config_kwargs",), ("for TorchAoConfig these take weight_dtype "
                                                              "(int8 or int4) and group_size")
        if self.qat and chosen:
            yield ("qat",), (f"QAT trains full-precision weights to survive quantization; `{chosen[0]}` loads them "
                             "already quantized. Keep one")

    @property
    def export_scheme(self) -> TorchAOScheme | None:
        """The scheme of output_dir/quantized: `quantization:`, else the one QAT trained for
        when torchao can write it (int4/int8)."""
        if self.quantization or not self.qat:
            return self.quantization
        return self.qat if self.qat.weight_dtype in TORCHAO_WEIGHTS else None

    @property
    def dequantizes(self) -> bool:
        """An MXFP4 checkpoint (gpt-oss) read into full-precision weights as it loads."""
        return self.model_quantization_config == "Mxfp4Config" and \
            (self.model_quantization_config_kwargs or {}).get("dequantize") is True

    @property
    def quantized(self) -> bool:
        """The base trains on quantized weights (so only an adapter can learn)."""
        return self.gptq or self.load_in_8bit or self.load_in_4bit or (
            self.model_quantization_config is not None and not self.dequantizes)

    @property
    def bitsandbytes(self) -> bool:
        return self.load_in_8bit or self.load_in_4bit
