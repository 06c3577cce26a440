"""Readers shared by the stages: the catalog size and the positives as CSR."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from negsamp.interactions import Interactions
from negsamp.paths import Paths

if TYPE_CHECKING:
    from negsamp.config import Config


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


def positives(paths: Paths, *files: Path) -> Interactions:
    """The union of the positives in ``files`` as one CSR over the whole catalog."""
    require(*files)
    n_users, n_items = catalog_size(paths)
    df = pl.concat([pl.read_parquet(f, columns=["user", "item", "count"]) for f in files])
    return Interactions.from_frame(df, n_users, n_items)


def min_interactions_needed(cfg: "Config") -> int:  # noqa: UP037
    """Interactions a user needs for the configured split (validation checks the same)."""
    from negsamp.split import min_needed

    return min_needed(cfg.split)
