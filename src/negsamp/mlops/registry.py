"""The model registry: versions, the ``champion`` / ``challenger`` / ``previous_champion``
aliases and rollback. The listing ``negsamp registry show`` prints: :mod:`~negsamp.mlops.listing`.

The gate (:mod:`negsamp.mlops.gate`) decides; this module only writes what was decided.
"""

from __future__ import annotations

import logging
from typing import Any

import mlflow
from mlflow import MlflowClient

from negsamp.mlops import store
from negsamp.mlops.champion import CHAMPION, alias_version
from negsamp.mlops.errors import RegistrationError
from negsamp.mlops.listing import versions as versions  # re-exported

log = logging.getLogger(__name__)

CHALLENGER, PREVIOUS = "challenger", "previous_champion"
_GATE_TAGS = ("diff", "p_value", "ci_low", "ci_high")


def register_version(model_uri: str, name: str, tags: dict[str, str]) -> int:
    """Register ``model_uri`` as a new version of ``name``; returns the version number."""
    return int(mlflow.register_model(model_uri, name, tags=tags).version)


def apply_decision(
    client: MlflowClient,
    name: str,
    version: int,
    decision: Any,
    champion_version: int | None,
    value: float,
) -> str:
    """Move the aliases as ``decision`` (a :class:`negsamp.promotion.Decision`) says and
    tag the version with it; returns the alias ``version`` now holds. The decision and its
    reason are also the version's description, what the MLflow UI shows first.

    ``champion_version`` is the champion the decision was made against (read once, before):
    on promotion it becomes ``previous_champion``.
    """
    v = str(version)
    for key in _GATE_TAGS:
        if getattr(decision, key) is not None:
            client.set_model_version_tag(name, v, f"gate_{key}", repr(getattr(decision, key)))
    alias = CHAMPION if decision.promote else CHALLENGER
    if decision.promote and champion_version is not None:
        client.set_registered_model_alias(name, PREVIOUS, str(champion_version))
    client.set_registered_model_alias(name, alias, v)
    tags = {"metric": decision.metric, "metric_value": repr(value), "decision": alias}
    for key, val in (tags | {"reason": decision.reason}).items():
        client.set_model_version_tag(name, v, key, val)
    text = f"gate: {alias} ({decision.metric} = {value:.4f}). {decision.reason}"
    client.update_model_version(name, v, description=text)
    return alias


def delete_version(client: MlflowClient, name: str, version: int) -> bool:
    """Remove a version a failed registration created; False (logged) when that failed too."""
    try:
        client.delete_model_version(name, str(version))
    except Exception:  # noqa: BLE001 - cleaning up after another error
        log.exception("could not remove %s v%s after a failure", name, version)
        return False
    return True


def rollback(model_name: str, uri: str) -> dict[str, Any]:
    """Give ``champion`` back to the ``previous_champion`` version, in one step.

    The version that was champion becomes ``previous_champion``, so a second rollback
    undoes the first. Raises RegistrationError when there is nothing to roll back to.
    """
    client = MlflowClient(store.ready(uri))
    prev = alias_version(client, model_name, PREVIOUS)
    if prev is None:
        raise RegistrationError(
            f"{model_name} has no {PREVIOUS!r} alias in {uri}: nothing to roll back to"
        )
    mv = alias_version(client, model_name, CHAMPION)
    current = None if mv is None else int(mv.version)
    client.set_registered_model_alias(model_name, CHAMPION, prev.version)
    if current is not None:
        client.set_registered_model_alias(model_name, PREVIOUS, str(current))
    reason = f"rollback: v{prev.version} is champion again (was v{current})"
    client.set_model_version_tag(model_name, prev.version, "reason", reason)
    log.info("%s: %s", model_name, reason)
    return {
        "model_name": model_name,
        "champion": int(prev.version),
        "previous_champion": current,
        "reason": reason,
    }
