"""Which dataset a model was trained on, and the gate's refusal to compare across datasets (#13).

A model's dataset is ``<data.source>:<data.path>`` (the path as params.yaml writes it,
normalised): the base log its appended batches extend. Its contents may grow (appends,
a refreshed export at the same path) and it stays the same dataset; another source or
path is another dataset, on which the champion's ids and metrics mean nothing. The
``dataset`` tag is on every run and registered version (:mod:`negsamp.mlops.lineage`);
for a champion registered before that tag existed it is read from the run's params.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from negsamp.config import Config
from negsamp.promotion import Decision

if TYPE_CHECKING:
    from mlflow.entities import Run

    from negsamp.mlops.champion import Champion

TAG = "dataset"


def identity(cfg: Config) -> str:
    """``<data.source>:<data.path>``, e.g. ``movielens-100k:data/raw/ml-100k/u.data``."""
    return f"{cfg.data.source}:{posixpath.normpath(cfg.data.path)}"


def of_run(run: Run | None) -> str | None:
    """The dataset ``run`` was trained on: its tag, else its logged data.source/data.path."""
    if run is None:
        return None
    if TAG in run.data.tags:
        return run.data.tags[TAG]
    params = run.data.params
    if "data.source" in params and "data.path" in params:
        return f"{params['data.source']}:{posixpath.normpath(params['data.path'])}"
    return None


def refuse(cfg: Config, champion: Champion | None, value: float) -> Decision | None:
    """A not-promoted decision when ``champion`` was trained on another dataset than
    ``cfg``'s; None when it was the same one, or cannot be told (no champion, no run)."""
    if champion is None:
        return None
    theirs, ours = of_run(champion.run), identity(cfg)
    if theirs is None or theirs == ours:
        return None
    why = (
        f"champion v{champion.version} was trained on {theirs}, this model on {ours}: not "
        f"comparable, so not promoted; register each dataset under its own registry.model_name, "
        f"or set the 'champion' alias by hand to switch {champion.name} to this dataset"
    )
    return Decision(False, why, cfg.registry.metric, value, None)
