"""When the sampled and the full-ranking protocol disagree (issue #18, Krichene & Rendle 2020).

A sampled metric (the held-out item ranked among ``n_eval_neg`` random candidates) and its
full-ranking counterpart (ranked among every unseen item) can order two configurations
oppositely: the sampled one rewards pushing the held-out item above *random* items, the
full one above the *best* competitors, popular ones above all. :func:`reversals` finds
every pair of configurations whose order under a sampled metric is the reverse of their
order under its full-ranking counterpart and gives both paired tests, so a reader knows
which conclusion depends on the protocol. Shared by the sweep report and
``bench/quality.py``; pure (numpy, polars).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import polars as pl

from negsamp.metrics.bootstrap import paired_complete_cases
from negsamp.rng import Stream, numpy_rng


def counterparts(k: int) -> tuple[tuple[str, str], ...]:
    """(sampled, full) metric pairs that measure the same thing under the two protocols."""
    return ((f"sampled_hr_{k}", f"full_recall_{k}"), (f"sampled_ndcg_{k}", f"full_ndcg_{k}"))


@dataclass(frozen=True)
class Reversal:
    """``ahead`` beats ``behind`` on ``sampled`` and loses to it on ``full``.

    Each test is of ``ahead`` minus ``behind`` on the same users: diff (mean), ci_low,
    ci_high (paired bootstrap CI), p_value (sign-flip permutation), n_users. So the
    sampled diff is positive and the full diff negative.
    """

    ahead: str
    behind: str
    sampled: str
    full: str
    sampled_test: dict[str, float]
    full_test: dict[str, float]

    def supported(self) -> bool:
        """Both differences exclude zero: the two protocols really disagree."""
        s, f = self.sampled_test, self.full_test
        return s["ci_low"] > 0 and f["ci_high"] < 0


def reversals(
    per_user: Mapping[str, pl.DataFrame],
    k: int,
    n_resamples: int,
    level: float,
    seed: int,
) -> list[Reversal]:
    """Every pair of configurations whose sampled and full-ranking orders are opposite.

    per_user: configuration -> one row per evaluated unit (column ``user``; a user, or a
    (seed, user) key) with the metrics of :func:`counterparts` that it has. The order is
    that of the means over the units both configurations share (a tie is no order). The
    tests are seeded by ``seed`` and the pair's position, so the same inputs give the same
    result. A metric pair missing from either configuration is skipped.
    """
    out: list[Reversal] = []
    names = list(per_user)
    for p, (x, y) in enumerate(combinations(names, 2)):
        j = per_user[x].join(per_user[y], on="user", suffix="__y")
        for q, (s, f) in enumerate(counterparts(k)):
            cols = (s, f, f"{s}__y", f"{f}__y")
            if not set(cols) <= set(j.columns) or j.height == 0:
                continue
            a = j.select(s, f).to_numpy().astype(np.float64)
            b = j.select(f"{s}__y", f"{f}__y").to_numpy().astype(np.float64)
            d = np.nanmean(a, 0) - np.nanmean(b, 0)  # x minus y on (sampled, full)
            if not (d[0] * d[1] < 0):
                continue
            ahead, behind = (x, y) if d[0] > 0 else (y, x)
            va, vb = (b, a) if ahead == x else (a, b)  # the test is of vb - va: ahead - behind
            rng = numpy_rng(seed, Stream.PROTOCOLS, 2 * p + q)
            t = paired_complete_cases(va, vb, n_resamples, level, rng, [s, f])
            tests = [
                {key: float(t[key][m]) for key in ("diff", "ci_low", "ci_high", "p_value")}
                | {"n_users": int(t["n_users"][m])}
                for m in (0, 1)
            ]
            out.append(Reversal(ahead, behind, s, f, tests[0], tests[1]))
    return out


def describe(r: Reversal, level: float = 0.95) -> str:
    """One line: who leads where, with both tests."""

    def test(name: str, t: dict[str, float]) -> str:
        return (
            f"{name} {t['diff']:+.4f} [{t['ci_low']:+.4f}, {t['ci_high']:+.4f}] "
            f"p={t['p_value']:.3g}"
        )

    tag = "both CIs exclude 0" if r.supported() else f"not both significant at {level:.0%}"
    return (
        f"`{r.ahead}` beats `{r.behind}` on {test(r.sampled, r.sampled_test)} but loses on "
        f"{test(r.full, r.full_test)} ({tag})"
    )


def summary(found: list[Reversal], gate_metric: str, level: float = 0.95) -> list[str]:
    """The lines a report prints: which metric the gate uses, then every reversal."""
    if gate_metric.startswith("sampled"):
        protocol = "the sampled protocol"
    elif gate_metric.startswith("full"):
        protocol = "the full-ranking protocol"
    else:
        protocol = "neither ranking protocol"
    head = (
        f"The registry gate uses `{gate_metric}` ({protocol}). Pairs whose order under a "
        "sampled metric is the reverse of their order under its full-ranking counterpart "
        "(differences: first minus second on the same users, paired bootstrap CI, "
        "sign-flip p):"
    )
    if not found:
        return [head, "none: the two protocols order every pair of configurations alike."]
    return [head, *(f"- {describe(r, level)}" for r in found)]
