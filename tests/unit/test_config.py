"""Config loading: Axolotl's keys validate, mistakes are named with line and fix, all at once."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from axo.config import load, validate
from axo.errors import ConfigError

SEED = Path(__file__).parents[1] / "fixtures" / "seed.yml"


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "cfg.yml"
    path.write_text(text)
    return path


BASE = "base_model: some/model\ndatasets:\n  - path: data.jsonl\n    type: alpaca\n"


def problems(path, overrides=()) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load(path, list(overrides))
    return err.value.problems


def test_seed_config_validates():
    cfg = load(SEED)
    assert cfg.model.base_model == "NousResearch/Nous-Hermes-llama-1b-v1"
    assert cfg.data.datasets[0].type == "alpaca"
    assert cfg.data.sequence_len == 512
    assert cfg.train.learning_rate == 2e-5
    assert cfg.lora.adapter is None


def test_seed_config_validates_through_cli():
    run = subprocess.run([sys.executable, "-m", "axo", "validate", str(SEED)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert yaml.safe_load(run.stdout)["micro_batch_size"] == 1


def test_unknown_key_names_key_line_and_suggestion(tmp_path):
    path = write(tmp_path, BASE + "adapter: lora\nlora_rr: 8\n")
    [msg] = problems(path)
    assert "`lora_rr`" in msg and "line 6" in msg and "did you mean `lora_r`?" in msg


def test_unknown_dataset_key_is_reported_with_its_entry(tmp_path):
    path = write(tmp_path, BASE + "    pathh: x\n")
    [msg] = problems(path)
    assert "`datasets[0].pathh`" in msg and "line 5" in msg and "did you mean `path`?" in msg


def test_wrong_type_names_key_value_and_allowed(tmp_path):
    path = write(tmp_path, BASE + "lr_scheduler: cosin\nlearning_rate: fast\n")
    msgs = problems(path)
    sched = next(m for m in msgs if "lr_scheduler" in m)
    assert "'cosin'" in sched and "'cosine'" in sched and "line 5" in sched
    lr = next(m for m in msgs if "learning_rate" in m)
    assert "'fast'" in lr and "number" in lr


def test_all_problems_reported_at_once(tmp_path):
    path = write(tmp_path, "datasets:\n  - path: d.jsonl\n    type: nope\n"
                           "lora_rr: 8\nlora_r: 0\nwarmup_steps: 5\nwarmup_ratio: 0.1\n")
    msgs = problems(path)
    assert len(msgs) == 5, msgs
    joined = "\n".join(msgs)
    # (a cross-field check of an area runs once that area's own fields are valid)
    for needle in ("`base_model`: required", "lora_rr", "`lora_r` (line 5)", "unknown dataset type 'nope'",
                   "either `warmup_steps` or `warmup_ratio`"):
        assert needle in joined


def test_a_refused_axolotl_key_says_why_and_what_is_nearest(tmp_path):
    path = write(tmp_path, BASE + "s2_attention: true\n")
    [msg] = problems(path)
    assert msg.startswith("`s2_attention` (line 5): a training method axo does not have")
    assert "Nearest:" in msg


def test_an_axolotl_key_whose_value_turns_nothing_on_is_accepted(tmp_path):
    cfg = load(write(tmp_path, BASE + "s2_attention:\nuse_eaft: false\nliger_rope: false\n"))
    assert cfg.model.base_model == "some/model"


def test_dataset_type_not_supported_yet(tmp_path):
    path = write(tmp_path, BASE.replace("alpaca", "bradley_terry"))
    [msg] = problems(path)
    assert "bradley_terry" in msg and "not supported yet" in msg and "datasets[0].type" in msg


def test_null_means_default(tmp_path):
    cfg = load(write(tmp_path, BASE + "lora_r:\nadapter:\nlearning_rate: 1e-4\n"))
    assert cfg.lora.lora_r == 8 and cfg.lora.adapter is None
    assert cfg.train.learning_rate == 1e-4  # YAML 1.1 reads 1e-4 as text; it is still a number here


def test_axolotl_alias_type_of_model(tmp_path):
    cfg = load(write(tmp_path, BASE + "type_of_model: AutoModelForCausalLM\n"))
    assert cfg.model.model_type == "AutoModelForCausalLM"


def test_overrides_are_validated_like_yaml(tmp_path):
    path = write(tmp_path, BASE)
    cfg = load(path, ["--learning_rate", "1e-4", "--adapter=lora", "--lora_target_linear",
                      "--datasets.0.path", "other.jsonl"])
    assert cfg.train.learning_rate == 1e-4
    assert cfg.lora.adapter == "lora" and cfg.lora.lora_target_linear is True
    assert cfg.data.datasets[0].path == "other.jsonl"
    [msg] = problems(path, ["--micro_batch_size", "0"])
    assert "`micro_batch_size` (--micro_batch_size)" in msg and "greater than 0" in msg
    [msg] = problems(path, ["--lora_rr", "4"])
    assert "did you mean `lora_r`?" in msg
    [msg] = problems(path, ["--datasets.3.path", "x"])
    assert "--datasets.3.path" in msg


def test_config_is_read_only_and_round_trips(tmp_path):
    cfg = load(write(tmp_path, BASE + "adapter: lora\nlora_target_linear: true\n"))
    with pytest.raises(Exception):
        cfg.train.learning_rate = 1.0
    assert validate(cfg.to_flat()) == cfg


def test_cli_reports_errors_without_traceback(tmp_path):
    path = write(tmp_path, BASE + "lora_rr: 8\nmicro_batch_size: -1\n")
    run = subprocess.run([sys.executable, "-m", "axo", "validate", str(path)],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert "2 problems" in run.stderr and "lora_rr" in run.stderr


def test_missing_file_and_bad_yaml(tmp_path):
    [msg] = problems(tmp_path / "nope.yml")
    assert "does not exist" in msg
    [msg] = problems(write(tmp_path, "base_model: [unclosed\n"))
    assert "not valid YAML" in msg


def test_config_schema_lists_flat_keys():
    run = subprocess.run([sys.executable, "-m", "axo", "config-schema"], capture_output=True, text=True)
    schema = json.loads(run.stdout)
    assert schema["additionalProperties"] is False
    assert schema["properties"]["lora_r"]["description"] == "LoRA rank."
    assert "base_model" in schema["required"]
    assert {"datasets", "learning_rate", "adapter", "use_tensorboard"} <= set(schema["properties"])


def test_cli_help_does_not_import_heavy_libraries():
    code = ("import sys; from axo.cli import app; "
            "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'peft') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.strip() == "[]", run.stdout + run.stderr


def test_every_optimizer_and_scheduler_exists_in_transformers():
    from typing import get_args

    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    from axo.config.training import Optimizer, Scheduler

    assert set(get_args(Optimizer)) - {"muon"} <= {o.value for o in OptimizerNames}  # muon: axo builds it
    assert set(get_args(Scheduler)) <= {s.value for s in SchedulerType}


def test_eval_steps_without_eval_data(tmp_path, caplog):
    """Axolotl evaluated nothing when there was nothing to evaluate on, whatever `eval_steps` said: so does axo,
    saying so; asking for an eval strategy with nothing to evaluate is still an error (transformers' Trainer
    refuses it)."""
    with caplog.at_level("INFO", logger="axo"):
        cfg = load(write(tmp_path, BASE + "eval_steps: 10\n"))
    assert cfg.train.eval_steps is None and "there is nothing to evaluate on" in caplog.text
    [msg] = problems(write(tmp_path, BASE + "eval_strategy: steps\n"))
    assert "`eval_strategy`" in msg and "`val_set_size` or `test_datasets`" in msg
    assert load(write(tmp_path, BASE + "eval_steps: 10\nval_set_size: 0.1\n")).train.eval_steps == 10


def test_model_classes(tmp_path):
    assert load(write(tmp_path, BASE + "model_type: LlamaForCausalLM\n")).model.model_type == "LlamaForCausalLM"
    [msg] = problems(write(tmp_path, BASE + "model_type: AutoModelForSeq2SeqLM\n"))
    assert "`model_type`" in msg and "not supported yet" in msg


def test_pretraining_dataset_needs_max_steps(tmp_path):
    text = "base_model: m\npretraining_dataset:\n  - path: corpus.jsonl\n"
    [msg] = problems(write(tmp_path, text))
    assert "`pretraining_dataset` (line 2): a streamed dataset has no known length: set `max_steps`" in msg
    assert load(write(tmp_path, text + "max_steps: 10\n")).data.pretraining_dataset[0].text_column == "text"
    [msg] = problems(write(tmp_path, "base_model: m\n"))
    assert "no training data" in msg


def test_quantization_keys(tmp_path):
    lora = "adapter: lora\nlora_target_linear: true\n"
    cfg = load(write(tmp_path, BASE + lora + "model_quantization_config: TorchAoConfig\n"))
    assert cfg.quant.quantized and not cfg.quant.bitsandbytes
    msgs = problems(write(tmp_path, BASE + "load_in_4bit: true\n"))
    assert any("needs `adapter: qlora`" in m for m in msgs)
    msgs = problems(write(tmp_path, BASE + lora + "model_quantization_config: Mxfp4Config\n"))
    assert any("MXFP4 weights train only dequantized" in m for m in msgs)
    gpt_oss = load(write(tmp_path, BASE + "model_quantization_config: Mxfp4Config\n"
                         "model_quantization_config_kwargs: {dequantize: true}\n"))  # a full fine-tune of gpt-oss
    assert gpt_oss.quant.dequantizes and not gpt_oss.quant.quantized
    msgs = problems(write(tmp_path, BASE + "adapter: qlora\nload_in_4bit: true\nload_in_8bit: true\n"))
    assert any("`load_in_8bit`, `load_in_4bit` each quantize the base" in m for m in msgs)
    assert any(m.startswith("`load_in_4bit` (line 6)") for m in msgs)


def test_preference_config_checks(tmp_path):
    pairs = "base_model: m\ndatasets:\n  - path: p.jsonl\n    type: chat_template.default\n"
    cfg = load(write(tmp_path, pairs + "rl: dpo\ndpo_beta: 0.2\n"))
    assert cfg.rl.beta == 0.2  # Axolotl's dpo_beta is rl_beta
    assert load(write(tmp_path, pairs + "rl: orpo\ntrl:\n  beta: 0.3\n")).rl.beta == 0.3
    [msg] = problems(write(tmp_path, pairs))
    assert "`datasets[0].type` (line 4): `chat_template.default` is not a row format of SFT" in msg
    assert "rows train `rl: dpo`, `rl: ipo`, `rl: orpo`, `rl: simpo`, `reward_model: true`" in msg
    [msg] = problems(write(tmp_path, BASE + "rl: dpo\n"))
    assert "`datasets[0].type` (line 4): `alpaca` is not a row format of `rl: dpo`" in msg
    [msg] = problems(write(tmp_path, pairs + "rl: dpo\ntrain_on_inputs: true\n"))
    assert "`train_on_inputs` (line 6): does not apply to `rl: dpo`: its trainer builds its own batches" in msg
    [msg] = problems(write(tmp_path, pairs + "rl: dpo\nsimpo_gamma: 0.5\n"))
    assert "`simpo_gamma` (line 6): does nothing with `rl: dpo` (it is read by simpo)" in msg
    [msg] = problems(write(tmp_path, pairs.replace("chat_template.default", "bradley_terry.chat_template")
                           + "reward_model: true\n"))
    assert "AutoModelForSequenceClassification" in msg
    model, rows = problems(write(tmp_path, pairs + "process_reward_model: true\n"))  # both, in file order
    assert "use stepwise_supervised" in rows and rows.startswith("`datasets[0].type` (line 4)")
    assert model.startswith("`model_type`: `process_reward_model: true` scores every step")
    steps = pairs.replace("chat_template.default", "stepwise_supervised")
    [msg] = problems(write(tmp_path, steps + "process_reward_model: true\n"))
    assert "AutoModelForTokenClassification" in msg
    [msg] = problems(write(tmp_path, BASE + "    step_separator: ' | '\n"))
    assert "`datasets[0].step_separator` (line 5): only applies to `type: stepwise_supervised`" in msg
    [msg] = problems(write(tmp_path, pairs + "rl: dpo\ntrl:\n  rollout_func: x\n"))
    assert msg.startswith("`trl.rollout_func` (line 7): a GRPO variant TRL 1.16 does not have")
    [msg] = problems(write(tmp_path, pairs + "rl: dpo\ntrl:\n  num_generations: 4\n"))
    assert "`trl.num_generations` (line 7): does nothing with `rl: dpo` (it is read by grpo, rloo, ebft)" in msg
    [msg] = problems(write(tmp_path, pairs + "rl: dpo\ntrl:\n  bta: 4\n"))
    assert "`trl.bta`" in msg and "unknown key" in msg


def test_a_typo_and_five_cross_field_mistakes_are_all_reported_with_their_lines(tmp_path):
    path = write(tmp_path, "\n".join([
        "base_model: some/model",
        "rl: dpo",                          # 2: alpaca rows are not DPO rows
        "datasets:",
        "  - path: data.jsonl",
        "    type: alpaca",                 # 5
        "learning_rat: 1e-4",               # 6: the typo
        "warmup_steps: 10",
        "warmup_ratio: 0.1",                # 8: both warmups
        "eval_strategy: steps",             # 9: nothing to evaluate
        "load_in_4bit: true",               # 10: a 4-bit base needs qlora
        "train_on_inputs: true",            # 11: DPO decides its own labels
        "loraplus_lr_ratio: 16",            # 12: LoRA+ without an adapter
    ]) + "\n")
    msgs = problems(path)
    expected = ["`learning_rat` (line 6): unknown key; did you mean `learning_rate`?",
                "`warmup_ratio` (line 8): set either", "`eval_strategy` (line 9): there is nothing to evaluate on",
                "`load_in_4bit` (line 10): needs `adapter: qlora`",
                "`train_on_inputs` (line 11): does not apply to `rl: dpo`",
                "`loraplus_lr_ratio` (line 12): needs `adapter: lora`",
                "`datasets[0].type` (line 5): `alpaca` is not a row format of `rl: dpo`"]
    for start in expected:
        assert sum(m.startswith(start) for m in msgs) == 1, (start, msgs)
    assert len(msgs) == len(expected), msgs


def test_runtime_refusals_that_are_config_rules(tmp_path):
    """Mistakes that used to stop a run after loading now stop it at validation."""
    msgs = problems(write(tmp_path, BASE + "reinit_weights: true\nadapter: qlora\nload_in_4bit: true\n"
                          "loraplus_lr_ratio: 4\noptimizer: adafactor\n"))
    assert any(m.startswith("`reinit_weights` (line 5): builds fresh weights") for m in msgs), msgs
    assert any(m.startswith("`optimizer` (line 9): `loraplus_lr_ratio` builds an AdamW optimizer") for m in msgs)


def test_batching_keys_under_other_methods_are_skipped_with_a_warning(tmp_path, caplog):
    """Packing is exact, so a trainer that builds its own batches learns the same without it (an
    Axolotl key of class 3: one warning, the run goes on)."""
    pairs = "base_model: m\nrl: dpo\ndatasets:\n  - path: p.jsonl\n    type: chat_template.default\n"
    with caplog.at_level("WARNING", logger="axo"):
        cfg = load(write(tmp_path, pairs + "sample_packing: true\npad_to_sequence_len: true\n"))
    assert cfg.method.name == "dpo"
    assert "`sample_packing` (line 6) is skipped: does not apply to `rl: dpo`: its trainer builds its own " \
           "batches, each padded to its longest row. What is learned does not change." in caplog.text
    assert "`pad_to_sequence_len` (line 7) is skipped" in caplog.text


def test_keys_of_sft_labels_under_other_methods_are_errors(tmp_path):
    pairs = "base_model: m\nrl: dpo\ndatasets:\n  - path: p.jsonl\n    type: chat_template.default\n"
    [msg] = problems(write(tmp_path, pairs + "    roles_to_train: [user]\n"))
    assert msg.startswith("`datasets[0].roles_to_train` (line 6): chooses which tokens SFT trains; under `rl: dpo`")
    [msg] = problems(write(tmp_path, BASE.replace("alpaca", "chat_template") + "    field_chosen: good\n"))
    assert msg.startswith("`datasets[0].field_chosen` (line 5): only applies to preference rows")
