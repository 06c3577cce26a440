"""Stage ``register``: log the run to MLflow, register the model, apply the champion gate.

Reads what train and evaluate wrote (see :func:`negsamp.registry.required_inputs`)
and writes ``data/registry/registration.json`` with the run id, the model version,
its alias and the decision, so DVC and the flow can see what was registered.
"""

from __future__ import annotations

import logging
from typing import Any

from negsamp.config import Config
from negsamp.io import write_json
from negsamp.paths import Paths

log = logging.getLogger(__name__)


def run(
    cfg: Config, paths: Paths = Paths(), extra_tags: dict[str, str] | None = None
) -> dict[str, Any]:
    """Register the trained model; returns (and writes) the registration record."""
    from negsamp.registry import log_and_register  # imports MLflow (about 1.3 s)

    record = log_and_register(cfg, paths, extra_tags).to_dict()
    write_json(paths.registration, record)
    before = record["champion_value_before"]
    log.info(
        "registered %s v%d as %s: %s=%.4f (champion before: %s) - %s",
        record["model_name"],
        record["version"],
        record["alias"],
        record["metric"],
        record["value"],
        "none" if before is None else f"{before:.4f}",
        record["reason"],
    )
    return record
