"""Where the training data comes from and how it is turned into tokens."""

from typing import Literal

from pydantic import Field, field_validator, model_validator

from axo.config.base import Area

# Formats axo implements; the data-pipeline issue adds the rest of Axolotl's types.
SUPPORTED_TYPES = ("alpaca",)
AXOLOTL_TYPES = (
    "chat_template", "completion", "input_output", "pretrain", "sharegpt", "alpaca_chat",
    "alpaca_w_system", "oasst", "gpteacher", "reflection", "explainchoice", "concisechoice",
    "summarizetldr", "metharme", "bradley_terry", "stepwise_supervised", "user_defined",
)


class DatasetConfig(Area):
    """One entry of `datasets:` or `test_datasets:`."""

    path: str = Field(description="Local file or folder, or a hub dataset id.")
    type: str = Field("alpaca", description="Row format: " + ", ".join(SUPPORTED_TYPES) + ".")
    data_files: str | list[str] | None = Field(None, description="Files (or globs) inside `path`.")
    ds_type: Literal["json", "parquet", "csv", "arrow", "text"] | None = Field(
        None, description="File format, when the extension does not say."
    )
    name: str | None = Field(None, description="Hub dataset configuration name.")
    split: str = Field("train", description="Split to read.")
    revision: str | None = Field(None, description="Hub dataset revision.")

    @field_validator("type")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value in SUPPORTED_TYPES:
            return value
        if value.split(".")[0] in AXOLOTL_TYPES:
            raise ValueError(f"dataset type {value!r} is not supported yet; supported: "
                             + ", ".join(SUPPORTED_TYPES))
        raise ValueError(f"unknown dataset type {value!r}; supported: " + ", ".join(SUPPORTED_TYPES))


class DataConfig(Area):
    datasets: list[DatasetConfig] = Field(min_length=1, description="Training datasets, mixed.")
    test_datasets: list[DatasetConfig] | None = Field(
        None, description="Held-out datasets for evaluation (instead of `val_set_size`)."
    )
    val_set_size: float = Field(
        0.0, ge=0.0,
        description="Hold out this fraction (<1) or this many rows (>=1) of the training data.",
    )
    sequence_len: int = Field(2048, gt=0, description="Longest sequence in tokens.")
    train_on_inputs: bool = Field(
        False, description="Also train on the prompt; by default only the response and EOS are."
    )
    dataset_prepared_path: str | None = Field(
        None, description="Folder for the tokenized-dataset cache (default: output_dir/prepared)."
    )
    dataset_processes: int | None = Field(None, gt=0, description="Workers for tokenization.")

    @model_validator(mode="after")
    def _one_eval_source(self):
        if self.test_datasets and self.val_set_size:
            raise ValueError("set either `val_set_size` or `test_datasets`, not both")
        return self

    @property
    def has_eval(self) -> bool:
        return bool(self.test_datasets) or self.val_set_size > 0
