"""Hardware-dependent choices made at preflight, and the TrainingArguments mapping."""

import pytest
import torch

from axo.errors import AxoError
from axo.model.preflight import resolve_precision
from axo.train.args import to_tracker_env, to_training_args

cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="checks CPU behaviour")


@cpu_only
def test_bf16_auto_is_fp32_on_cpu(make_config):
    assert resolve_precision(make_config().model) == "fp32"
    assert resolve_precision(make_config(bf16=False).model) == "fp32"
    assert resolve_precision(make_config(bf16=True).model) == "bf16"


@cpu_only
def test_fp16_on_cpu_is_a_clear_error(make_config):
    with pytest.raises(AxoError, match="`fp16: true` needs a CUDA GPU"):
        resolve_precision(make_config(fp16=True).model)


def test_training_args_mapping(make_config):
    cfg = make_config(micro_batch_size=4, gradient_accumulation_steps=2, warmup_ratio=0.1,
                      lr_scheduler="linear", optimizer="adamw_torch", save_steps=5, eval_steps=3,
                      val_set_size=0.1, use_tensorboard=True, wandb_project="p", wandb_mode="offline",
                      weight_decay=0.01)
    args = to_training_args(cfg, "fp32", has_eval=True)
    assert args.per_device_train_batch_size == 4 and args.gradient_accumulation_steps == 2
    assert args.warmup_steps == 0.1 and args.lr_scheduler_type == "linear"
    assert args.save_strategy == "steps" and args.save_steps == 5
    assert args.eval_strategy == "steps" and args.eval_steps == 3
    assert args.report_to == ["tensorboard", "wandb"]
    assert args.max_steps == 10 and args.learning_rate == 3e-3 and args.weight_decay == 0.01
    assert not args.bf16 and not args.fp16


def test_no_eval_split_means_no_eval(make_config):
    args = to_training_args(make_config(), "fp32", has_eval=False)
    assert args.eval_strategy == "no" and args.report_to == []


def test_tracker_env(make_config, tmp_path):
    lg = make_config(use_mlflow=True, wandb_project="p", wandb_mode="offline").logging
    env = to_tracker_env(lg, str(tmp_path), environ={})
    assert env["MLFLOW_TRACKING_URI"] == (tmp_path / "mlruns").as_uri()
    assert env["MLFLOW_ALLOW_FILE_STORE"] == "true"
    assert env["WANDB_PROJECT"] == "p" and env["WANDB_MODE"] == "offline"
    # a tracking server the user already points at is left alone
    env = to_tracker_env(lg, str(tmp_path), environ={"MLFLOW_TRACKING_URI": "http://mlflow:5000"})
    assert "MLFLOW_TRACKING_URI" not in env and "MLFLOW_ALLOW_FILE_STORE" not in env


def test_resume_from_a_folder_that_is_not_a_checkpoint(make_config, tmp_path):
    from axo.train.checkpoints import resume_checkpoint

    with pytest.raises(AxoError, match="`resume_from_checkpoint`.*not a checkpoint folder"):
        resume_checkpoint(make_config(resume_from_checkpoint=str(tmp_path)).train)
    assert resume_checkpoint(make_config(auto_resume_from_checkpoints=True).train) is None
