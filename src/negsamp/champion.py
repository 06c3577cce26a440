"""The registered champion, scored in the current snapshot's ids.

The champion was trained on an earlier snapshot: its dense ids come from that
snapshot's id maps. To evaluate it on today's split (promotion gate, performance
decay), current dense ids are mapped to the champion's through the original ids;
users or items it has never seen score -inf, so ties count against it, exactly as a
model that cannot rank them deserves. Reading the champion from the registry is
:func:`negsamp.mlops.champion.read`'s; this module is pure torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import torch


@dataclass
class RemappedScorer:
    """score / score_all of ``model`` over the current catalog.

    user_map: int64 [n_current_users], champion dense id or -1
    item_map: int64 [n_current_items], champion dense id or -1
    """

    model: Any
    user_map: torch.Tensor
    item_map: torch.Tensor

    @classmethod
    def build(
        cls,
        model: Any,
        champion_users: pl.DataFrame,
        champion_items: pl.DataFrame,
        current_users: pl.DataFrame,
        current_items: pl.DataFrame,
        device: torch.device | str = "cpu",
    ) -> RemappedScorer:
        """Id maps are frames of (dense Int64, raw); current ones as written by ingest."""
        return cls(
            model.to(device),
            _map(champion_users, current_users, "user", device),
            _map(champion_items, current_items, "item", device),
        )

    @property
    def n_items(self) -> int:
        return int(self.item_map.numel())

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users int64 [B]; items int64 [B, M] (current ids) -> float [B, M]."""
        cu, ci = self.user_map[users], self.item_map[items]
        s = self.model.score(cu.clamp(min=0), ci.clamp(min=0)).float()
        return s.masked_fill((cu < 0)[:, None] | (ci < 0), float("-inf"))

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """users int64 [B] (current ids) -> float [B, n_current_items]."""
        cu = self.user_map[users]
        s = self.model.score_all(cu.clamp(min=0)).float()[:, self.item_map.clamp(min=0)]
        return s.masked_fill((cu < 0)[:, None] | (self.item_map < 0)[None, :], float("-inf"))


def _map(
    champ: pl.DataFrame, current: pl.DataFrame, col: str, device: torch.device | str
) -> torch.Tensor:
    cur = current.select(pl.col(col).cast(pl.Int64).alias("cur"), pl.col("original").alias("raw"))
    champ = champ.with_columns(pl.col("raw").cast(cur["raw"].dtype, strict=False))
    joined = cur.join(champ, on="raw", how="left").sort("cur")
    out = joined["dense"].fill_null(-1).to_numpy().astype(np.int64)
    return torch.as_tensor(out, device=device)
