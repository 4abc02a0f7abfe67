"""Parallel keys: validation, their mapping to TrainingArguments / accelerate, and the launcher
command lines (single node, two nodes, passthrough)."""

import json
import subprocess
import sys

import pytest

from axo.config import validate
from axo.errors import AxoError, ConfigError
from axo.parallel.engines import PRESETS, check_nd_device, check_world_size, to_parallel_kwargs
from axo.parallel.launch import Launch, command

BASE = {"base_model": "some/model", "datasets": [{"path": "d.jsonl", "type": "alpaca"}]}


def parallel(**keys):
    return validate({**BASE, **keys}).parallel


def problem(**keys) -> str:
    with pytest.raises(ConfigError) as err:
        validate({**BASE, **keys})
    return err.value.problems[0]


def test_fsdp2_options_map_to_transformers_fsdp_config():
    p = parallel(fsdp_version=2, fsdp_config={
        "fsdp_offload_params": True,  # Axolotl's prefixed spelling
        "reshard_after_forward": False, "transformer_layer_cls_to_wrap": "LlamaDecoderLayer",
        "cpu_ram_efficient_loading": True, "activation_checkpointing": True, "state_dict_type": "FULL_STATE_DICT"})
    kwargs = to_parallel_kwargs(p)
    assert kwargs["fsdp"] is True
    assert kwargs["fsdp_config"] == {
        "version": 2, "reshard_after_forward": False, "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
        "cpu_offload": True, "cpu_ram_efficient_loading": True, "activation_checkpointing": True,
        "state_dict_type": "FULL_STATE_DICT", "transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"]}
    assert "parallelism_config" not in kwargs  # plain FSDP needs none


def test_fsdp_config_builds_a_real_fsdp2_plugin():
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir="/tmp/unused", use_cpu=True, report_to="none",
                             **to_parallel_kwargs(parallel(fsdp_version=2, fsdp_config={"offload_params": True})))
    assert args.fsdp_plugin_args["fsdp_version"] == 2
    assert args.fsdp_plugin_args["cpu_offload"] is True
    assert args.fsdp_plugin_args["state_dict_type"] == "SHARDED_STATE_DICT"


def test_legacy_fsdp_list_and_top_level_final_type():
    p = parallel(fsdp=["full_shard", "auto_wrap", "offload"], fsdp_final_state_dict_type="SHARDED_STATE_DICT")
    assert p.use_fsdp and p.fsdp_options.offload_params
    assert p.fsdp_options.final_state_dict_type == "SHARDED_STATE_DICT"


def test_parallel_mistakes_are_named():
    assert "FSDP1 is not supported" in problem(fsdp_version=1)
    assert "keep one" in problem(fsdp_version=2, deepspeed="zero2")
    assert "neither a file nor one of axo's presets" in problem(deepspeed="zero4")
    assert "set `fsdp_version: 2`" in problem(context_parallel_size=2)
    # Axolotl's configs often ask for both: FSDP's own checkpointing is kept, the other dropped
    both = validate({**BASE, "fsdp_version": 2, "fsdp_config": {"activation_checkpointing": True},
                     "gradient_checkpointing": True})
    assert not both.train.gradient_checkpointing and both.parallel.fsdp_options.activation_checkpointing
    # a misspelt FSDP option changes how the run is sharded, not what it learns: a warning naming the key
    # (UNREAD_RULE), an error with strict
    assert "the closest key is `reshard_after_forward`" in problem(fsdp_version=2, strict=True,
                                                                   fsdp_config={"reshard_after_fwd": True})


def test_deepspeed_presets_ship_as_valid_json():
    for name in ("zero1", "zero2", "zero3", "zero3_offload"):
        config = json.loads((PRESETS / f"{name}.json").read_text())
        assert config["zero_optimization"]["stage"] == int(name[4])
    assert json.loads((PRESETS / "zero3_offload.json").read_text())["zero_optimization"]["offload_param"]


def test_deepspeed_preset_resolves_to_the_shipped_file_or_says_how_to_install():
    import importlib.util

    p = parallel(deepspeed="zero3")
    if importlib.util.find_spec("deepspeed") is None:
        with pytest.raises(AxoError, match="pip install deepspeed"):
            to_parallel_kwargs(p)
    else:
        assert to_parallel_kwargs(p)["deepspeed"] == str(PRESETS / "zero3.json")


def test_nd_sizes_map_to_parallelism_config_and_must_tile_the_world():
    p = parallel(fsdp_version=2, dp_shard_size=2, tensor_parallel_size=2)
    pc = to_parallel_kwargs(p)["parallelism_config"]
    assert (pc.dp_shard_size, pc.tp_size, pc.cp_size, pc.dp_replicate_size) == (2, 2, 1, 1)
    check_world_size(p, 4)
    with pytest.raises(AxoError, match=r"`dp_shard_size: 2` x `tensor_parallel_size: 2` = 4 processes, but 2"):
        check_world_size(p, 2)


def test_tensor_parallel_on_cpu_says_what_blocks_it():
    """transformers loads a TP-sharded model on CPU, but accelerate 1.15's ParallelismConfig raises
    "only compatible DistributedType.FSDP (version 2) or DistributedType.Multi{Device} or
    DistributedType.DEEPSPEED, but got DistributedType.MULTI_CPU" in Accelerator(); axo says so first."""
    with pytest.raises(AxoError, match="`tensor_parallel_size`: accelerate's ParallelismConfig does not run on CPU"):
        check_nd_device(parallel(tensor_parallel_size=2), has_accelerator=False)
    check_nd_device(parallel(tensor_parallel_size=2), has_accelerator=True)
    check_nd_device(parallel(fsdp_version=2, dp_shard_size=2), has_accelerator=False)  # plain FSDP is fine


def test_launcher_commands():
    train = ["cfg.yml", "--learning_rate", "1e-4"]
    torchrun = command(Launch("torchrun", 2), train)
    assert torchrun[1:] == ["--nproc-per-node", "2", "--nnodes", "1", "--standalone",
                            "-m", "axo.cli", "train", *train]
    accelerate = command(Launch("accelerate", 4, passthrough=["--mixed_precision", "bf16"]), train)
    assert accelerate[1:] == ["launch", "--num_processes", "4", "--num_machines", "1", "--multi_gpu",
                              "--mixed_precision", "bf16", "-m", "axo.cli", "train", *train]
    assert command(Launch("python", 2), train) == [sys.executable, "-m", "axo.cli", "train", *train]


def test_two_node_commands():
    node1 = dict(num_processes=8, nnodes=2, node_rank=1, main_process_ip="10.0.0.1", main_process_port=29500)
    assert command(Launch("torchrun", **node1), ["c.yml"])[1:11] == [
        "--nproc-per-node", "8", "--nnodes", "2", "--node-rank", "1", "--master-addr", "10.0.0.1",
        "--master-port", "29500"]
    assert command(Launch("accelerate", **node1), ["c.yml"])[1:13] == [
        "launch", "--num_processes", "16", "--num_machines", "2", "--multi_gpu", "--machine_rank", "1",
        "--main_process_ip", "10.0.0.1", "--main_process_port", "29500"]


def test_cli_checks_the_world_before_spawning(tmp_path):
    path = tmp_path / "cfg.yml"
    path.write_text("base_model: some/model\ndatasets:\n  - path: d.jsonl\n    type: alpaca\n"
                    "fsdp_version: 2\ndp_shard_size: 4\n")
    run = subprocess.run([sys.executable, "-m", "axo", "train", str(path), "--num-processes", "2",
                          "--launcher", "torchrun", "--", "--max-restarts", "0"], capture_output=True, text=True)
    assert run.returncode == 2
    assert "`dp_shard_size: 4` = 4 processes, but 2 were launched" in run.stderr
    assert "launching" not in run.stderr and "Traceback" not in run.stderr
