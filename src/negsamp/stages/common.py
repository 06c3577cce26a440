"""Readers shared by the stages: the catalog size, the positives as CSR, the champion."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from negsamp.interactions import Interactions
from negsamp.paths import Paths

if TYPE_CHECKING:
    from negsamp.config import Config

log = logging.getLogger(__name__)


class MissingInput(FileNotFoundError):
    """A stage's input does not exist: an earlier stage has not run (or failed)."""


def require(*files: Path) -> None:
    for f in files:
        if not Path(f).exists():
            raise MissingInput(
                f"{f} not found: run the stage that writes it first "
                "(`negsamp run`, or `dvc repro` which runs stages in order)"
            )


def catalog_size(paths: Paths) -> tuple[int, int]:
    """(n_users, n_items) from the saved id maps."""
    require(paths.user_ids, paths.item_ids)
    n_users = pl.scan_parquet(paths.user_ids).select(pl.len()).collect().item()
    n_items = pl.scan_parquet(paths.item_ids).select(pl.len()).collect().item()
    return int(n_users), int(n_items)


def original_users(paths: Paths) -> np.ndarray:
    """[n_users]: each internal user id's original id (the file's), for messages."""
    require(paths.user_ids)
    return pl.read_parquet(paths.user_ids).sort("user")["original"].to_numpy()


def positives(paths: Paths, *files: Path) -> Interactions:
    """The union of the positives in ``files`` as one CSR over the whole catalog."""
    require(*files)
    n_users, n_items = catalog_size(paths)
    df = pl.concat([pl.read_parquet(f, columns=["user", "item", "count"]) for f in files])
    return Interactions.from_frame(df, n_users, n_items)


def excluded_positives(cfg: "Config", paths: Paths, train: Interactions) -> Interactions:  # noqa: UP037
    """The positives a negative may never be (``sampler.exclude``): the pool's and the
    ``mixed`` cap's redraws use this one set."""
    how = getattr(cfg.sampler, "exclude", "train")
    if how == "train":
        return train
    if how == "train+valid":
        return positives(paths, paths.train, paths.valid)
    from negsamp.samplers.exact import no_exclusions

    log.warning("sampler.exclude=none: negatives may be the user's own positives")
    return no_exclusions(train.n_users, train.n_items)


def min_interactions_needed(cfg: "Config") -> int:  # noqa: UP037
    """Interactions a user needs for the configured split (validation checks the same)."""
    from negsamp.split import min_needed

    return min_needed(cfg.split)


def champion_scorer(cfg: "Config", paths: Paths, device: Any) -> tuple[int, Any] | None:  # noqa: UP037
    """(version, scorer in this run's ids) of the registered champion; None when there is none.

    The scorer is a :class:`negsamp.champion.RemappedScorer`: the champion's ids mapped onto
    the current id maps, so it scores users and items of this run. A champion whose model
    cannot be loaded raises ValueError.
    """
    from negsamp.champion import RemappedScorer
    from negsamp.mlops.champion import read
    from negsamp.mlops.uri import tracking_uri

    champion = read(tracking_uri(paths.root), cfg.registry.model_name)
    if champion is None:
        return None
    if champion.model is None:
        raise ValueError(f"{champion.name} v{champion.version} (champion): {champion.problem}")
    current = pl.read_parquet(paths.user_ids), pl.read_parquet(paths.item_ids)
    scorer = RemappedScorer.build(champion.model, champion.users, champion.items, *current, device)
    return champion.version, scorer
