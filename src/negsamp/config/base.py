"""What every configuration section shares: frozen, unknown keys rejected, one error type."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

PARAMS_FILE = "params.yaml"


class Frozen(BaseModel):
    """A frozen section that rejects unknown keys (a typo never falls back to a default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigError(ValueError):
    """params.yaml (after overrides) is not a valid configuration."""
