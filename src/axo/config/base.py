"""Shared base for every config area: typed, strict, read-only."""

from pydantic import BaseModel, ConfigDict


class Area(BaseModel):
    """One area of the config. Unknown fields are the loader's job to report; here they are forbidden."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, protected_namespaces=()
    )
