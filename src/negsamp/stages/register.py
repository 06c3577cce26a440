"""Stage ``register``: log the run to MLflow, register the model, apply the champion gate.

Reads what train and evaluate wrote (see :func:`negsamp.registry.required_inputs`)
and writes ``data/registry/registration.json`` with the run id, the model version,
its alias and the decision, so DVC and the flow can see what was registered.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from negsamp.config import Config
from negsamp.io import read_json, write_json
from negsamp.paths import Paths
from negsamp.stages.common import require

log = logging.getLogger(__name__)


def best_variant(cfg: Config, paths: Paths) -> tuple[str, dict[str, float]]:
    """The configuration with the best ``registry.metric``, and every configuration's value."""
    from negsamp.registry import RegistrationError

    name = cfg.registry.metric
    scores: dict[str, float] = {}
    for v in cfg.variants:
        f = paths.for_variant(v).metrics
        require(f)
        value = read_json(f).get(name)
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise RegistrationError(
                f"{f} has no finite {name!r} (registry.metric); re-run evaluate"
            )
        scores[v] = float(value)
    pick = max if cfg.registry.greater_is_better else min
    return pick(scores, key=lambda v: scores[v]), scores


def run(
    cfg: Config, paths: Paths = Paths(), extra_tags: dict[str, str] | None = None
) -> dict[str, Any]:
    """Register the best configuration's model; returns (and writes) the registration record.

    The best of ``sweep.configs`` by ``registry.metric`` is the candidate that goes through
    the champion/challenger gate (with one configuration, that one).
    """
    from negsamp.registry import log_and_register  # imports MLflow (about 1.3 s)

    best, scores = best_variant(cfg, paths)
    # data_snapshot: how many appended batches the model saw (the drift check's reference)
    tags = {"config": best, "data_snapshot": str(len(cfg.data.appends)), **(extra_tags or {})}
    record = log_and_register(cfg.variant(best), paths.for_variant(best), tags).to_dict()
    record["config"] = best
    record["candidates"] = scores
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
