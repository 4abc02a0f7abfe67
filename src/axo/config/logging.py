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
    use_swanlab: bool = Field(False, description="Log to SwanLab (`pip install swanlab`).")
    swanlab_project: str | None = Field(None, description="SwanLab project; setting it turns SwanLab on.")
    swanlab_experiment_name: str | None = Field(None, description="SwanLab experiment (run) name.")
    swanlab_mode: Literal["cloud", "local", "offline", "disabled"] | None = Field(None, description="SwanLab mode.")
    swanlab_workspace: str | None = Field(None, description="SwanLab workspace.")
    swanlab_api_key: str | None = Field(None, description="SwanLab API key (else the environment's).")
    swanlab_log_model: bool | str | None = Field(None, description="SwanLab: upload the model.")
    swanlab_description: str | None = Field(None, description="SwanLab: the experiment's description.")
    swanlab_web_host: str | None = Field(None, description="SwanLab: web address of a private deployment.")
    swanlab_api_host: str | None = Field(None, description="SwanLab: API address of a private deployment.")
    use_comet: bool = Field(False, description="Log to Comet (`pip install comet_ml`).")
    comet_api_key: str | None = Field(None, description="Comet API key (else the environment's).")
    comet_workspace: str | None = Field(None, description="Comet workspace.")
    comet_project_name: str | None = Field(None, description="Comet project.")
    comet_experiment_key: str | None = Field(None, description="Comet experiment to continue.")
    comet_mode: Literal["get_or_create", "create", "get"] | None = Field(None, description="Comet experiment mode.")
    comet_online: bool | None = Field(None, description="Comet: false logs offline.")
    use_trackio: bool = Field(False, description="Log to Trackio (`pip install trackio`).")
    trackio_project_name: str | None = Field(None, description="Trackio project; setting it turns Trackio on.")
    trackio_run_name: str | None = Field(None, description="Trackio run name.")
    trackio_space_id: str | None = Field(None, description="Trackio: the Hugging Face Space to log to.")

    @property
    def report_to(self) -> list[str]:
        targets = []
        if self.use_tensorboard:
            targets.append("tensorboard")
        if self.use_mlflow or self.mlflow_tracking_uri:
            targets.append("mlflow")
        if (self.use_wandb or self.wandb_project) and self.wandb_mode != "disabled":
            targets.append("wandb")
        if (self.use_swanlab or self.swanlab_project) and self.swanlab_mode != "disabled":
            targets.append("swanlab")
        if self.use_comet:
            targets.append("comet_ml")
        if self.use_trackio or self.trackio_project_name:
            targets.append("trackio")
        return targets

    @property
    def run_name(self) -> str | None:
        return (self.wandb_name or self.mlflow_run_name or self.swanlab_experiment_name or self.trackio_run_name)
