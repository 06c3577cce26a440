"""The champion/challenger decision, made on the same current test split for both.

The champion's logged metric came from the split it was trained on; comparing it with
a challenger evaluated on today's split would compare two different exams. So the
champion is re-evaluated on the current split and candidates (through
:class:`negsamp.champion.RemappedScorer`), and the two per-user metric vectors are
compared: the challenger takes ``champion`` only if its mean is better by at least
``registry.margin``, with a paired test over users as evidence (and, if
``registry.require_significance``, as a requirement).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl
import torch

from negsamp import evaluate as ev
from negsamp.config import EvaluateCfg, RegistryCfg
from negsamp.interactions import Interactions
from negsamp.metrics import report
from negsamp.metrics.bootstrap import paired_complete_cases
from negsamp.rng import Stream, numpy_rng


def evaluate_scorer(
    scorer: Any,
    cands: pl.DataFrame,
    test: pl.DataFrame,
    seen: Interactions,
    train: Interactions,
    cfg: EvaluateCfg,
    seed: int,
    device: torch.device | str,
) -> report.Evaluation:
    """Everything the evaluate stage computes, for any object with score / score_all."""
    s_ranks = ev.sampled_ranks(scorer.score, cands, device, cfg.batch_size)
    full = ev.full_ranking(scorer.score_all, seen, test, max(cfg.ks), device, cfg.batch_size)
    return report.build(cands, s_ranks, full, train, cfg, seed)


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    metric: str
    challenger: float
    champion: float | None
    diff: float | None = None  # challenger - champion, on the same users
    p_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    users: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(
    challenger: pl.DataFrame, champion: pl.DataFrame | None, cfg: RegistryCfg, seed: int
) -> Decision:
    """Compare per-user frames (``user`` + metric columns) on the users both evaluated.

    A user whose ``registry.metric`` is NaN or null in either frame is left out (as
    :func:`negsamp.metrics.bootstrap.compare` does): the decision, the means and ``users``
    are over the others. Raises ValueError when no user with a value is left, so a
    promotion is never decided on NaN.
    """
    name = cfg.metric
    if name not in challenger.columns:
        raise ValueError(f"per-user metrics have no {name!r} column (registry.metric)")
    if champion is None:
        new = challenger[name].cast(pl.Float64).fill_null(np.nan).to_numpy()
        new = new[~np.isnan(new)]
        if new.size == 0:
            raise ValueError(
                f"registry.metric {name!r} is NaN or missing for all {challenger.height} users "
                "of the challenger: nothing to decide on; re-run evaluate"
            )
        return Decision(True, "no champion yet", name, float(new.mean()), None, users=new.size)
    both = challenger.select("user", pl.col(name).alias("new")).join(
        champion.select("user", pl.col(name).alias("old")), on="user"
    )
    a = both["old"].cast(pl.Float64).fill_null(np.nan).to_numpy()[:, None]
    b = both["new"].cast(pl.Float64).fill_null(np.nan).to_numpy()[:, None]
    rng = numpy_rng(seed, Stream.GATE)
    test = paired_complete_cases(a, b, cfg.n_resamples, 0.95, rng, [name])
    diff, p = float(test["diff"][0]), float(test["p_value"][0])
    old, new_mean, users = float(test["a"][0]), float(test["b"][0]), int(test["n_users"][0])
    gain = diff if cfg.greater_is_better else -diff
    significant = p < cfg.significance
    promote = gain > 0 and gain >= cfg.margin and (significant or not cfg.require_significance)
    left_out = f", {both.height - users} left out: NaN" if users < both.height else ""
    evidence = f"paired test over {users} users{left_out}: diff {diff:+.4g}, p={p:.3g}"
    if promote:
        reason = f"{name} {new_mean:.4g} beats champion {old:.4g} by >= {cfg.margin:g} ({evidence})"
    elif gain <= 0 or gain < cfg.margin:
        reason = f"{name} {new_mean:.4g} is not better than champion {old:.4g} by {cfg.margin:g} ({evidence})"
    else:
        reason = f"improvement not significant at {cfg.significance:g} ({evidence})"
    return Decision(
        promote,
        reason,
        name,
        new_mean,
        old,
        diff,
        p,
        float(test["ci_low"][0]),
        float(test["ci_high"][0]),
        users,
    )
