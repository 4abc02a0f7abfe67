"""Config -> the distributed engines transformers' Trainer drives through accelerate: DDP options,
FSDP2, DeepSpeed and accelerate's ParallelismConfig. axo never runs a collective itself."""

import importlib.util
import logging
import os
from pathlib import Path

from axo.config.parallel import DEEPSPEED_PRESETS, ND_KEYS, FSDPOptions, ParallelConfig
from axo.errors import AxoError

log = logging.getLogger("axo")
PRESETS = Path(__file__).parent / "deepspeed"
KEY_OF = {name: key for key, name in ND_KEYS.items()}  # accelerate's name -> the user's key


def to_parallel_kwargs(p: ParallelConfig) -> dict:
    """The TrainingArguments fields of the parallel keys the user set."""
    kwargs = {k: v for k, v in {
        "ddp_timeout": p.ddp_timeout, "ddp_bucket_cap_mb": p.ddp_bucket_cap_mb,
        "ddp_broadcast_buffers": p.ddp_broadcast_buffers, "ddp_find_unused_parameters": p.ddp_find_unused_parameters,
    }.items() if v is not None}
    if p.use_fsdp:
        kwargs.update(fsdp=True, fsdp_config=to_fsdp_config(p.fsdp_options))
    if p.deepspeed:
        kwargs["deepspeed"] = deepspeed_config(p.deepspeed)
    if _beyond_plain_fsdp(p):
        kwargs["parallelism_config"] = to_parallelism_config(p)
    return kwargs


def _beyond_plain_fsdp(p: ParallelConfig) -> bool:
    """Only `dp_shard_size` (equal to the world size, see check_world_size) is what FSDP does
    anyway: no ParallelismConfig needed, which also keeps it working on CPU (see check_nd_device)."""
    return any(size > 1 for name, size in p.nd_sizes.items() if name != "dp_shard_size")


def to_fsdp_config(o: FSDPOptions) -> dict:
    """transformers' `fsdp_config` for FSDP2 (it builds accelerate's FullyShardedDataParallelPlugin)."""
    config = {
        "version": 2,
        "reshard_after_forward": o.reshard_after_forward,
        "auto_wrap_policy": o.auto_wrap_policy,
        "cpu_offload": o.offload_params,
        "cpu_ram_efficient_loading": o.cpu_ram_efficient_loading,
        "activation_checkpointing": o.activation_checkpointing,
        "state_dict_type": o.state_dict_type,
    }
    if o.wrap_classes:
        config["transformer_layer_cls_to_wrap"] = o.wrap_classes
    if o.min_num_params:
        config["min_num_params"] = o.min_num_params
    return config


def deepspeed_config(value: str | dict) -> str | dict:
    """A preset name becomes the JSON shipped with axo; files and inline dicts pass through."""
    if importlib.util.find_spec("deepspeed") is None:
        raise AxoError("`deepspeed` is set but DeepSpeed is not installed. Fix: `pip install deepspeed` "
                       "(it builds its kernels on first use and needs a GPU for most of them).")
    if isinstance(value, str) and value in DEEPSPEED_PRESETS:
        return str(PRESETS / f"{value}.json")
    return value


def to_parallelism_config(p: ParallelConfig):
    from accelerate.parallelism_config import ParallelismConfig

    return ParallelismConfig(**p.nd_sizes)


def check_world_size(p: ParallelConfig, world_size: int) -> None:
    """The N-D sizes must tile the processes exactly; say which key to change."""
    if not p.nd_sizes:
        return
    product = 1
    for size in p.nd_sizes.values():
        product *= size
    if product != world_size:
        written = " x ".join(f"`{KEY_OF[k]}: {v}`" for k, v in p.nd_sizes.items())
        raise AxoError(f"{written} = {product} processes, but {world_size} were launched. Fix: make the product "
                       f"of the sizes equal the number of processes (e.g. set `dp_shard_size` or "
                       f"`dp_replicate_size` to cover the rest), or launch {product}.")


def check_nd_device(p: ParallelConfig, has_accelerator: bool) -> None:
    """accelerate 1.15's ParallelismConfig accepts only GPU-like devices, FSDP2 or DeepSpeed, and
    validates that before FSDP can be turned on for CPU: tensor, context and replicate parallelism
    cannot run on CPU processes. (transformers itself loads a tensor-parallel model on CPU fine:
    the refusal is accelerate's, "ParallelismConfig is only compatible DistributedType.FSDP ...
    but got DistributedType.MULTI_CPU".)"""
    if has_accelerator or not _beyond_plain_fsdp(p):
        return
    keys = ", ".join(f"`{KEY_OF[k]}`" for k, v in p.nd_sizes.items() if k != "dp_shard_size" and v > 1)
    raise AxoError(f"{keys}: accelerate's ParallelismConfig does not run on CPU processes (gloo), so this "
                   "needs GPUs. Fix: remove it to train with DDP or FSDP2 (`fsdp_version: 2`) on CPU.")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def shard_on_cpu(trainer) -> bool:
    """accelerate only turns FSDP on for accelerator devices: on CPU (gloo) it silently trains
    plain DDP, with nothing sharded. Tell this run's accelerator state that FSDP is on, with the
    plugin transformers built from fsdp_config; accelerate's own FSDP2 path does the rest
    (fully_shard over a gloo mesh). Returns whether it had to."""
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    args, state = trainer.args, trainer.accelerator.state
    if (not args.fsdp_plugin_args or trainer.is_fsdp_enabled
            or state.distributed_type != DistributedType.MULTI_CPU):
        return False
    plugin = FullyShardedDataParallelPlugin(**args.fsdp_plugin_args)
    state.fsdp_plugin = plugin
    # the accelerator state re-reads distributed_type from the process state whenever it is built
    state.distributed_type = PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    trainer.is_fsdp_enabled = True
    log.info("FSDP2 on CPU: sharding over gloo (accelerate would have fallen back to DDP)")
    return True


def sharded_share(model) -> tuple[int, int]:
    """(sharded parameter count, all parameters): what FSDP really did to this model."""
    from torch.distributed.tensor import DTensor

    params = list(model.parameters())
    return sum(isinstance(p, DTensor) for p in params), len(params)


def save_sharded_model(trainer, final_state_dict_type: str, output_dir: str) -> None:
    """The final FSDP save, on every rank: FULL_STATE_DICT gathers the weights into one plain
    transformers model (rank 0 writes it); SHARDED_STATE_DICT writes each rank's shard into
    pytorch_model_fsdp_0/ for `axo merge-sharded-fsdp-weights`."""
    from accelerate.utils import save_fsdp_model

    plugin = trainer.accelerator.state.fsdp_plugin
    plugin.set_state_dict_type(final_state_dict_type)
    if final_state_dict_type == "FULL_STATE_DICT":
        trainer.save_model(output_dir)
        return
    save_fsdp_model(plugin, trainer.accelerator, trainer.model, output_dir)
    if trainer.is_world_process_zero():
        trainer.accelerator.unwrap_model(trainer.model).config.save_pretrained(output_dir)
        if trainer.processing_class is not None:
            trainer.processing_class.save_pretrained(output_dir)
