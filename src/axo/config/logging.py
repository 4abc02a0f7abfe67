"""Where metrics are reported."""

from typing import Literal

from pydantic import Field

from axo.config.base import Area


class LoggingConfig(Area):
    use_tensorboard: bool = Field(False, description="Write TensorBoard logs under output_dir/runs.")
    use_mlflow: bool = Field(False, description="Log to MLflow (`pip install axo[mlflow]`).")
    mlflow_tracking_uri: str | None = Field(None, description="MLflow tracking URI, e.g. file:./mlruns.")
    mlflow_experiment_name: str | None = Field(None, description="MLflow experiment name.")
    mlflow_run_name: str | None = Field(None, description="MLflow run name.")
    use_wandb: bool = Field(False, description="Log to Weights & Biases (`pip install axo[wandb]`).")
    wandb_project: str | None = Field(None, description="W&B project; setting it turns W&B on.")
    wandb_entity: str | None = Field(None, description="W&B entity (team or user).")
    wandb_name: str | None = Field(None, description="W&B run name.")
    wandb_mode: Literal["online", "offline", "disabled"] | None = Field(
        None, description="W&B mode; `offline` writes locally."
    )
    wandb_run_id: str | None = Field(None, description="W&B run id (to continue a run).")
    wandb_watch: Literal["gradients", "parameters", "all", "false"] | bool | None = Field(
        None, description="W&B: log gradients and/or parameters.")
    wandb_log_model: Literal["checkpoint", "end", "false"] | bool | None = Field(
        None, description="W&B: upload checkpoints or the final model as artifacts.")
    hf_mlflow_log_artifacts: bool | None = Field(None, description="MLflow: upload checkpoints as artifacts.")

    @property
    def report_to(self) -> list[str]:
        targets = []
        if self.use_tensorboard:
            targets.append("tensorboard")
        if self.use_mlflow or self.mlflow_tracking_uri:
            targets.append("mlflow")
        if (self.use_wandb or self.wandb_project) and self.wandb_mode != "disabled":
            targets.append("wandb")
        return targets
