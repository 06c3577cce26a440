"""The champion/challenger decision, made on the same current test split for both.

The champion's logged metric came from the split it was trained on; comparing it with
a challenger evaluated on today's split would compare two different exams. So the
champion is re-evaluated on the current split and candidates (through
:class:`negsamp.champion.RemappedScorer`) and :func:`compare` applies the rule:

- a per-user metric: the two per-user vectors are compared on the users both have; the
  challenger takes ``champion`` only if its mean is better by at least ``registry.margin``,
  with a paired test over users as evidence (and, if ``registry.require_significance``,
  as a requirement);
- a catalog-level metric (``coverage_K``, ``gini_K``: one number per model): the
  challenger's value against the champion's value re-computed on the same split, better
  by at least ``registry.margin``; there is no test, so significance cannot be required;
- a champion value that is missing or not finite never promotes.
"""

from __future__ import annotations

import math
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
from negsamp.metrics_names import is_catalog_level
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
    if both.height == 0:
        mean = float(challenger[name].cast(pl.Float64).mean() or float("nan"))
        return Decision(False, f"no user has a {name} from both models", name, mean, None)
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


def decide_catalog(challenger: float, champion: float, cfg: RegistryCfg) -> Decision:
    """Compare one number per model (a catalog-level metric): better by at least the margin."""
    name = cfg.metric
    if cfg.require_significance:
        raise ValueError(f"registry.require_significance needs a per-user metric, not {name}")
    diff = challenger - champion
    gain = diff if cfg.greater_is_better else -diff
    promote = gain > 0 and gain >= cfg.margin
    verdict = "beats" if promote else "is not better than"
    reason = (
        f"{name} {challenger:.4g} {verdict} champion {champion:.4g} by >= {cfg.margin:g} "
        f"(catalog-level: one number per model, diff {diff:+.4g})"
    )
    return Decision(promote, reason, name, challenger, champion, diff)


def _not_comparable(name: str, challenger: float, why: str) -> Decision:
    return Decision(False, f"not promoted: the champion's {name} {why}", name, challenger, None)


def compare(
    challenger: pl.DataFrame | None,
    challenger_value: float,
    champion: report.Evaluation,
    cfg: RegistryCfg,
    seed: int,
) -> Decision:
    """The gate's rule against a champion re-evaluated on the current split (module doc).

    challenger: ``user`` + ``cfg.metric`` per user (None for a catalog-level metric);
    challenger_value: its ``cfg.metric`` from metrics.json. Raises ValueError when the
    challenger's own values are unusable (the caller checks them before MLflow).
    """
    name = cfg.metric
    if is_catalog_level(name):
        old = champion.metrics.get(name)
        if old is None or not math.isfinite(old):
            return _not_comparable(name, challenger_value, f"on the current split is {old}")
        return decide_catalog(challenger_value, float(old), cfg)
    if challenger is None or name not in challenger.columns:
        raise ValueError(f"per-user metrics have no {name!r} column (registry.metric)")
    if name not in champion.per_user.columns:
        return _not_comparable(name, challenger_value, "has no per-user values")
    per_user = champion.per_user
    bad = per_user.height - per_user.filter(pl.col(name).cast(pl.Float64).is_finite()).height
    if bad:
        return _not_comparable(name, challenger_value, f"is not finite for {bad} users")
    return decide(challenger, champion.per_user, cfg, seed)
