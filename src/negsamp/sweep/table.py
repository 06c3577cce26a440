"""The comparison table of a sweep: one row per configuration, in the order of the choice.

The configuration taken to the champion gate is chosen on validation
(:mod:`negsamp.sweep.select`, issue #12); the rows follow that choice and show each
configuration's validation value. Every row carries the headline test metrics at K with
their bootstrap CIs, the paired test of the registry metric against the chosen
configuration on the same test users, popularity bias (ARP, long-tail share of the top K),
training time and throughput, and the sampler's speed. The test figures only report.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import polars as pl

from negsamp.metrics.bootstrap import paired_complete_cases
from negsamp.rng import Stream, numpy_rng
from negsamp.sweep.protocols import Reversal, reversals
from negsamp.sweep.select import Selection, describe


@dataclass(frozen=True)
class ConfigResult:
    """What one configuration produced (read from its DVC outputs by the report stage)."""

    name: str
    sampler: dict[str, Any]  # the resolved sampler config (name, n_neg, alpha, ...)
    model: str
    metrics: dict[str, float]  # metrics.json
    ci: dict[str, dict[str, float]]  # ci.json: metric -> {ci_low, ci_high}
    per_user: pl.DataFrame  # per_user.parquet: user + per-user metric columns
    history: list[dict[str, Any]]  # history.json
    manifest: dict[str, Any]  # train_pool.manifest.json


@dataclass(frozen=True)
class Row:
    config: str
    sampler: str  # a label: the sampler's name plus what tells its variants apart
    model: str
    n_neg: int | None  # negatives per positive; None for in_batch (the batch decides)
    values: dict[str, float]
    ci: dict[str, tuple[float, float]]
    vs_best: (
        dict[str, float] | None
    )  # on test: diff (this - chosen), ci_low, ci_high, p_value, n_users
    train_seconds: float
    epochs: int
    train_pairs_per_second: float | None
    negatives_per_second: float | None  # data-side sampling speed; None for batch-side
    rank: int = 0
    best: bool = False  # the chosen configuration (on validation), the one registered
    valid: float | None = None  # valid_<monitor> at the kept epoch; None: cannot be chosen


@dataclass(frozen=True)
class Comparison:
    metric: str  # the registry metric: reported on test, paired-tested against the chosen
    greater_is_better: bool
    k: int
    columns: tuple[str, ...]  # the test metrics every row shows, with CIs
    rows: tuple[Row, ...] = field(default_factory=tuple)
    level: float = 0.95  # of the CIs (evaluate.ci_level) and the paired test's CI
    monitor: str | None = None  # train.monitor, the validation metric the choice was made on
    # "valid" or "single" (see Selection.on); "test" only in reports written before issue #12
    chosen_on: str = "test"
    # pairs the sampled and full-ranking protocols order oppositely (issue #18)
    reversals: tuple[Reversal, ...] = ()

    @property
    def best(self) -> Row:
        """The chosen configuration (the first row)."""
        return self.rows[0]

    @property
    def choice(self) -> str:
        """Which split chose, in one line."""
        return describe(self.chosen_on, self.monitor or self.metric)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["best"] = self.best.config
        out["choice"] = self.choice
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Comparison:
        """The inverse of :meth:`to_dict` (comparison.json back into a table; one written
        before issue #12 reads as chosen on test, without validation values)."""
        rows = tuple(
            Row(**{**r, "ci": {k: tuple(v) for k, v in r["ci"].items()}}) for r in d["rows"]
        )
        cols = tuple(d["columns"])
        return cls(
            d["metric"],
            d["greater_is_better"],
            d["k"],
            cols,
            rows,
            d.get("level", 0.95),
            d.get("monitor"),
            d.get("chosen_on", "test"),
            tuple(Reversal(**r) for r in d.get("reversals", ())),
        )


def headline(k: int, metric: str) -> tuple[str, ...]:
    """The columns of the table: the four headline metrics at K, and the registry metric."""
    cols = (f"sampled_hr_{k}", f"sampled_ndcg_{k}", f"full_recall_{k}", f"full_ndcg_{k}")
    return cols if metric in cols else (*cols, metric)


def sampler_label(s: dict[str, Any]) -> str:
    """``popularity a=0.5``, ``hard k=2``, ``mixed h=0.5``: the name plus its key setting."""
    name = s.get("name", "?")
    extra = {
        "popularity": ("a", s.get("alpha")),
        "hard": ("k", s.get("k")),
        "mixed": ("h", s.get("hard_fraction")),
        "teacher_hard": ("top", s.get("top_k")),
    }.get(name)
    label = f"{name} {extra[0]}={extra[1]:g}" if extra and extra[1] is not None else name
    if name == "mixed" and s.get("schedule", "constant") != "constant":
        label += f" {s['schedule']} from {s.get('hard_fraction_start', 0):g}"
    if name == "same_attribute" or (name == "stratified" and s.get("by") == "attribute"):
        label += f" {s.get('family')}"
    return label + (" unreleased excluded" if s.get("exclude_unreleased") else "")


def _n_neg(s: dict[str, Any]) -> int | None:
    if s.get("name") == "hard":
        return int(s["k"])
    return int(s["n_neg"]) if "n_neg" in s else None


def throughput(history: list[dict[str, Any]]) -> tuple[float, float | None]:
    """(training seconds, pairs per second over the whole run) from history.json.

    Epochs without a finite ``seconds`` count nothing; None when no epoch has a rate.
    """
    fin = [h for h in history if _finite(h.get("seconds"))]
    total = sum(float(h["seconds"]) for h in fin)
    pairs = [float(h["pairs_per_second"]) * float(h["seconds"]) for h in fin
             if _finite(h.get("pairs_per_second"))]  # fmt: skip
    return total, (sum(pairs) / total if pairs and total > 0 else None)


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _aligned(a: pl.DataFrame, b: pl.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    """The two configurations' per-user ``col`` on the users both were evaluated on."""
    j = a.select("user", x=pl.col(col)).join(b.select("user", y=pl.col(col)), on="user")
    if j.height != a.height or j.height != b.height:
        raise ValueError(
            f"configurations were evaluated on different users ({a.height} vs {b.height}, "
            f"{j.height} shared): re-run evaluate for all of them on the same split"
        )
    return j["x"].to_numpy()[:, None], j["y"].to_numpy()[:, None]


def build(
    results: list[ConfigResult],
    selection: Selection,
    metric: str,
    greater_is_better: bool,
    k: int,
    n_resamples: int,
    level: float,
    seed: int,
) -> Comparison:
    """Order ``results`` as ``selection`` (the choice on validation) did, and test each
    against the chosen configuration on the same test users.

    The paired test of ``metric`` is the sign-flip permutation test and paired bootstrap
    CI of :func:`negsamp.metrics.bootstrap.paired_test` (seeded: the same inputs give the
    same table), over the users with a per-user value (not NaN) in both configurations
    (``n_users``); it reports, it does not choose. Every pair that the sampled and the
    full-ranking metrics at ``k`` order oppositely is listed with both paired tests
    (:func:`negsamp.sweep.protocols.reversals`). Raises ValueError when a configuration
    lacks ``metric`` or ``selection`` is of other configurations.
    """
    if not results:
        raise ValueError("nothing to compare: sweep.configs is empty")
    for r in results:
        v = r.metrics.get(metric)
        if not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError(f"configuration {r.name!r} has no finite {metric!r}: re-run evaluate")
    by_name = {r.name: r for r in results}
    if sorted(by_name) != sorted(selection.order) or len(by_name) != len(results):
        raise ValueError(
            f"the choice is of {sorted(selection.order)}, the results of "
            f"{sorted(r.name for r in results)}: choose among the configurations compared"
        )
    ordered = [by_name[n] for n in selection.order]
    cols = headline(k, metric)
    best = ordered[0]
    rows = []
    for rank, r in enumerate(ordered, start=1):
        vs = None
        if r is not best and metric in r.per_user.columns and metric in best.per_user.columns:
            a, b = _aligned(best.per_user, r.per_user, metric)
            rng = numpy_rng(seed, Stream.SWEEP, rank)
            t = paired_complete_cases(a, b, n_resamples, level, rng, [metric])
            vs = {key: float(t[key][0]) for key in ("diff", "ci_low", "ci_high", "p_value")}
            vs["n_users"] = int(t["n_users"][0])
        seconds, pairs = throughput(r.history)
        timing = r.manifest.get("timing") or {}
        values = {
            c: float(r.metrics[c]) for c in (*cols, f"arp_{k}", f"longtail_{k}") if c in r.metrics
        }
        # calibration (pointwise models) and embedding probes (with item features), if any
        values |= {c: float(v) for c, v in r.metrics.items() if c.startswith(("ece", "probe_"))}
        rows.append(
            Row(
                config=r.name,
                sampler=sampler_label(r.sampler),
                model=r.model,
                n_neg=_n_neg(r.sampler),
                values=values,
                ci={
                    c: (float(r.ci[c]["ci_low"]), float(r.ci[c]["ci_high"]))
                    for c in cols
                    if c in r.ci and {"ci_low", "ci_high"} <= set(r.ci[c])
                },
                vs_best=vs,
                train_seconds=seconds,
                epochs=len(r.history),
                train_pairs_per_second=pairs,
                negatives_per_second=timing.get("negatives_per_second"),
                rank=rank,
                best=r is best,
                valid=selection.values[r.name],
            )
        )
    return Comparison(
        metric,
        greater_is_better,
        k,
        cols,
        tuple(rows),
        level,
        selection.monitor,
        selection.on,
        tuple(reversals({r.name: r.per_user for r in ordered}, k, n_resamples, level, seed)),
    )
