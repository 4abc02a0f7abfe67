"""Training on many processes: DDP options, FSDP2, DeepSpeed, the N-D parallel sizes handed to
accelerate's ParallelismConfig, and Ray. axo only configures these engines; the process
launching lives in axo.parallel.launch."""

import logging
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from axo.config.base import Area
from axo.config.compat import COMBINATIONS

log = logging.getLogger("axo")

STATE_DICT_TYPES = Literal["FULL_STATE_DICT", "SHARDED_STATE_DICT"]
DEEPSPEED_PRESETS = ("zero1", "zero2", "zero3", "zero3_offload", "zero3_offload_params")
# axo's (Axolotl's) N-D parallel keys -> accelerate's ParallelismConfig names
ND_KEYS = {"dp_replicate_size": "dp_replicate_size", "dp_shard_size": "dp_shard_size",
           "tensor_parallel_size": "tp_size", "context_parallel_size": "cp_size"}
# FSDP1 options that FSDP2 (fully_shard) has no use for; Axolotl configs often carry them.
FSDP1_ONLY = ("sync_module_states", "use_orig_params", "forward_prefetch", "backward_prefetch", "limit_all_gathers")


class FSDPOptions(Area):
    """The `fsdp_config:` block (FSDP2, torch's fully_shard, through accelerate)."""

    fsdp_version: Literal[2] | None = Field(None, description="2 (FSDP2); may also be set at the top level.")
    reshard_after_forward: bool = Field(
        True, description="Free each layer's gathered weights after its forward (ZeRO-3 like); false keeps "
        "them until backward (ZeRO-2 like: faster, more memory).")
    auto_wrap_policy: Literal["TRANSFORMER_BASED_WRAP", "SIZE_BASED_WRAP"] = Field(
        "TRANSFORMER_BASED_WRAP", description="Which modules become their own shard unit.")
    transformer_layer_cls_to_wrap: str | list[str] | None = Field(
        None, description="Layer class(es) to wrap, e.g. LlamaDecoderLayer (default: the model's _no_split_modules).")
    min_num_params: int | None = Field(None, gt=0, description="SIZE_BASED_WRAP: parameters per unit.")
    offload_params: bool = Field(False, description="Keep sharded parameters in CPU memory between uses.")
    cpu_ram_efficient_loading: bool = Field(
        False, description="Only rank 0 reads the weights; the others receive their shards.")
    activation_checkpointing: bool = Field(
        False, description="FSDP's own activation checkpointing (use instead of gradient_checkpointing).")
    state_dict_type: STATE_DICT_TYPES = Field(
        "SHARDED_STATE_DICT", description="Checkpoints: each rank writes its shard (SHARDED_STATE_DICT; join "
        "them with `axo merge-sharded-fsdp-weights`) or rank 0 writes the whole model (FULL_STATE_DICT).")
    final_state_dict_type: STATE_DICT_TYPES = Field(
        "FULL_STATE_DICT", description="The final model in output_dir: FULL_STATE_DICT saves it in plain "
        "transformers format.")
    cpu_offload_pin_memory: bool | None = Field(None, description="Pin offloaded parameters (GPU only).")
    sync_module_states: bool | None = Field(None, description="FSDP1 only; FSDP2 ignores it.")
    use_orig_params: bool | None = Field(None, description="FSDP1 only; FSDP2 ignores it.")

    @model_validator(mode="before")
    @classmethod
    def _drop_fsdp_prefix(cls, data):
        """Axolotl (and accelerate's config files) also write `fsdp_offload_params: true`..."""
        if isinstance(data, dict):
            return {k[5:] if k.startswith("fsdp_") and k != "fsdp_version" else k: v for k, v in data.items()}
        return data

    @property
    def wrap_classes(self) -> list[str] | None:
        names = self.transformer_layer_cls_to_wrap
        return [names] if isinstance(names, str) else names


class ParallelConfig(Area):
    fsdp_version: int | None = Field(None, description="2: shard parameters, gradients and optimizer state "
                                     "with FSDP2 (set `fsdp_config` for its options).")
    fsdp_config: FSDPOptions | None = Field(None, description="FSDP2 options.")
    fsdp: list[str] | None = Field(
        None, description="Axolotl's older switch, e.g. [full_shard, auto_wrap]; `offload` offloads parameters.")
    fsdp_final_state_dict_type: STATE_DICT_TYPES | None = Field(
        None, description="Same as fsdp_config.final_state_dict_type.")
    deepspeed: str | dict[str, Any] | None = Field(
        None, description="A DeepSpeed JSON file, an inline config, or a preset shipped with axo: "
        + ", ".join(DEEPSPEED_PRESETS) + ".")
    ddp: bool | None = Field(None, description="Accepted for Axolotl configs: DDP is used whenever several "
                             "processes train without FSDP or DeepSpeed.")
    ddp_timeout: int | None = Field(None, gt=0, description="Seconds a collective may wait (default 1800).")
    ddp_bucket_cap_mb: int | None = Field(None, gt=0, description="DDP gradient bucket size.")
    ddp_broadcast_buffers: bool | None = Field(None, description="DDP: broadcast buffers from rank 0 each step.")
    ddp_find_unused_parameters: bool | None = Field(
        None, description="DDP: look for parameters without gradients each step (needed for some models).")
    dp_shard_size: int | None = Field(None, ge=1, description="Ranks that shard the model (FSDP2).")
    dp_replicate_size: int | None = Field(None, ge=1, description="Replicas of the (sharded) model.")
    tensor_parallel_size: int | None = Field(None, ge=1, description="Ranks that split each layer's matrices.")
    context_parallel_size: int | None = Field(None, ge=1, description="Ranks that split each sequence.")
    use_ray: bool = Field(False, description="Run training as a Ray Train job on the Ray cluster.")
    ray_num_workers: int = Field(1, ge=1, description="Ray workers (one training process each).")
    resources_per_worker: dict[str, float] | None = Field(
        None, description="Ray resources of each worker, e.g. {GPU: 1} or {CPU: 4}.")
    ray_run_name: str | None = Field(None, description="Name of the Ray Train run.")

    @field_validator("fsdp_version")
    @classmethod
    def _fsdp2(cls, value):
        if value not in (None, 2):
            raise ValueError(f"axo shards with FSDP2 (torch's fully_shard); FSDP{value} is not supported. "
                             "Fix: set `fsdp_version: 2` (the same fsdp_config options apply)")
        return value

    @field_validator("deepspeed")
    @classmethod
    def _deepspeed_source(cls, value):
        from pathlib import Path

        if isinstance(value, str) and value not in DEEPSPEED_PRESETS and not Path(value).is_file():
            raise ValueError(f"{value!r} is neither a file nor one of axo's presets ({', '.join(DEEPSPEED_PRESETS)})")
        return value

    def check(self):
        if self.use_fsdp and self.deepspeed:
            yield ("deepspeed",), "`deepspeed` and FSDP (`fsdp_version` / `fsdp_config`) both shard the model; keep one"
        if (self.context_parallel_size or 1) > 1 and not self.use_fsdp:
            yield ("context_parallel_size",), COMBINATIONS["cp_needs_fsdp2"][1]
        if ((self.dp_shard_size or 1) > 1) and not self.use_fsdp:
            yield ("dp_shard_size",), "the FSDP2 sharding degree needs `fsdp_version: 2`"

    @model_validator(mode="after")
    def _say_what_fsdp2_ignores(self):
        ignored = [k for k in FSDP1_ONLY if self.fsdp_config and getattr(self.fsdp_config, k, None) is not None]
        if ignored:
            log.warning("fsdp_config: %s only apply to FSDP1; FSDP2 ignores them", ", ".join(ignored))
        return self

    @property
    def use_fsdp(self) -> bool:
        return bool(self.fsdp_version or self.fsdp_config or self.fsdp)

    @property
    def fsdp_options(self) -> FSDPOptions:
        """fsdp_config with the top-level and legacy spellings folded in."""
        options = self.fsdp_config or FSDPOptions()
        updates = {}
        if self.fsdp_final_state_dict_type:
            updates["final_state_dict_type"] = self.fsdp_final_state_dict_type
        if self.fsdp and "offload" in self.fsdp:
            updates["offload_params"] = True
        if self.fsdp and "shard_grad_op" in self.fsdp:
            updates["reshard_after_forward"] = False
        return options.model_copy(update=updates)

    @property
    def nd_sizes(self) -> dict[str, int]:
        """The N-D parallel sizes the user set, by accelerate's ParallelismConfig names."""
        return {name: getattr(self, key) for key, name in ND_KEYS.items() if getattr(self, key) is not None}
