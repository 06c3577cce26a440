"""Hyperparameter search with Optuna: TPE seeded from ``base.seed``, median pruning per epoch.

Each trial samples the running model's and sampler's search spaces (declared beside their
configurations: :meth:`negsamp.config.plugins.PluginSection.search_space`), applies them as
overrides to the configuration by the one override function and validates the result, then
trains with :func:`negsamp.api.fit_config` (the train stage's code): after every epoch the
trainer ranks the validation items, the value of ``train.monitor`` is reported to the trial
and a trial the median pruner stops ends there. A trial's value is its best validation
value, the epoch ``restore_best`` keeps. Selection sees validation only: no trial is scored
on test; the test pairs only keep each user's test item out of its validation competitors,
as the train stage does (issue #18).

Tracking is a :class:`Tracker` handed in (the CLI passes MLflow's from
:mod:`negsamp.mlops.tuning`): this module knows no MLflow.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from negsamp import config as C
from negsamp.config import overrides as ov
from negsamp.config.models import CLOSED_FORM

log = logging.getLogger(__name__)


class Tracker(Protocol):
    """Where trials are recorded while they run (one nested run each in MLflow)."""

    def trial_started(self, number: int, params: dict[str, Any]) -> Any: ...

    def epoch(self, handle: Any, row: dict[str, float]) -> None: ...

    def trial_finished(
        self, handle: Any, state: str, value: float | None, epochs: int, seconds: float
    ) -> None: ...


@dataclass(frozen=True)
class TrialResult:
    number: int
    state: str  # COMPLETE | PRUNED | FAIL
    value: float | None  # best validation value of train.monitor
    params: dict[str, Any]  # "model.bpr.lr" -> value
    epochs: int
    seconds: float


@dataclass
class Outcome:
    monitor: str
    trials: list[TrialResult] = field(default_factory=list)

    @property
    def best(self) -> TrialResult:
        done = [t for t in self.trials if t.state == "COMPLETE" and t.value is not None]
        if not done:
            raise RuntimeError("no trial completed: nothing to select (see the log above)")
        return max(done, key=lambda t: (t.value, -t.number))


def search_space(cfg: C.Config) -> dict[tuple[str, ...], Any]:
    """Override path -> dimension for the running model and sampler (closed-form models take
    no negatives, so no sampler settings)."""
    space = dict(C.ModelSection.search_space(cfg.model.name))
    if cfg.model.name not in CLOSED_FORM:
        space |= C.SamplerSection.search_space(cfg.sampler.name)
    if not space:
        raise ValueError(
            f"model {cfg.model.name!r} and sampler {cfg.sampler.name!r} declare no search space"
        )
    shadowed = [
        k
        for k in ("lr", "l2")
        if ("model", cfg.model.name, k) in space and getattr(cfg.train, k) is not None
    ]
    if shadowed:
        raise C.ConfigError(
            f"train.{shadowed[0]} is set, so it would override every trial's "
            f"model.{cfg.model.name}.{shadowed[0]}: set train.{shadowed[0]} to null to tune it"
        )
    return space


def trial_config(cfg: C.Config, values: dict[tuple[str, ...], Any]) -> C.Config:
    """``cfg`` with ``values`` applied as overrides and validated (what a trial trains)."""
    doc = C.dump(cfg)
    ov.apply(doc, list(values.items()))
    return C.from_dict(copy.deepcopy(doc), "negsamp tune (trial)")


def entry(cfg: C.Config, values: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    """The ``sweep.configs`` entry that reproduces a trial: its values, nested, plus the
    model's and sampler's names (so the entry stands alone if the sections' names change)."""
    out: dict[str, Any] = {"model": {"name": cfg.model.name}}
    if cfg.model.name not in CLOSED_FORM:
        out["sampler"] = {"name": cfg.sampler.name}
    for path, value in values.items():
        ov.apply(out, [(path, value)])
    return out


def baseline(cfg: C.Config, space: dict[tuple[str, ...], Any]) -> dict[tuple[str, ...], Any]:
    """The configuration's own value at every path of ``space`` (what params.yaml trains),
    or {} when one of them is null or outside its dimension's range (then no baseline)."""
    doc = C.dump(cfg)
    out: dict[tuple[str, ...], Any] = {}
    for path, dim in space.items():
        v: Any = doc
        for key in path:
            v = v.get(key) if isinstance(v, dict) else None
        if v is None or isinstance(v, bool) or not dim.low <= v <= dim.high:
            log.info("no baseline trial: %s = %r is outside the search space", ".".join(path), v)
            return {}
        out[path] = v
    return out


def run(
    cfg: C.Config,
    data: Any,
    trials: int,
    tracker: Tracker,
    jobs: int = 1,
    prune: bool = True,
    fit: Callable[..., Any] | None = None,
    with_baseline: bool = True,
) -> tuple[Outcome, dict[tuple[str, ...], Any]]:
    """Run ``trials`` trials (``jobs`` at once, in threads) on ``data`` (a
    :class:`negsamp.api.Split`; its test pairs only keep test items out of the validation
    competitors). Returns the outcome and the best
    trial's override values.

    ``with_baseline``: trial 0 trains the configuration as it is (:func:`baseline`, Optuna's
    enqueued trial), so the best trial is never worse on validation than the hand-set
    settings the search started from; TPE learns from it like from any other trial."""
    import optuna

    from negsamp.api import fit_config

    fit = fit or fit_config
    space = search_space(cfg)
    names = {path: ".".join(path) for path in space}
    monitor = f"valid_{cfg.train.monitor}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # TPE models the results once half the trials (at most 10) ran on random draws
    startup = max(1, min(10, trials // 2))
    sampler = optuna.samplers.TPESampler(seed=cfg.base.seed, n_startup_trials=startup)
    # pruning starts once 3 trials finished, and never before a trial's 3rd epoch
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
        if prune
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    start = baseline(cfg, space) if with_baseline else {}
    if start:
        study.enqueue_trial({names[p]: v for p, v in start.items()})
    outcome = Outcome(monitor=cfg.train.monitor)
    chosen: dict[int, dict[tuple[str, ...], Any]] = {}

    def objective(trial: optuna.Trial) -> float:
        values = {path: dim.suggest(trial, names[path]) for path, dim in space.items()}
        chosen[trial.number] = values
        params = {names[p]: v for p, v in values.items()}
        handle = tracker.trial_started(trial.number, params)
        t0, best, epochs = time.perf_counter(), -math.inf, 0
        state, value = "FAIL", None

        def on_epoch(row: dict[str, float]) -> None:
            nonlocal best, epochs
            epochs += 1
            tracker.epoch(handle, row)
            if monitor not in row:
                raise ValueError("tune needs validation items (split.validation: true)")
            best = max(best, row[monitor])
            trial.report(row[monitor], int(row["epoch"]))
            if trial.should_prune():
                raise optuna.TrialPruned(f"epoch {int(row['epoch'])}: {row[monitor]:.4f}")

        try:
            fit(trial_config(cfg, values), data, on_epoch=on_epoch)
            state, value = "COMPLETE", best
            return best
        except optuna.TrialPruned:
            state, value = "PRUNED", best
            raise
        finally:
            seconds = time.perf_counter() - t0
            tracker.trial_finished(
                handle, state, value if math.isfinite(value or 0) else None, epochs, seconds
            )
            outcome.trials.append(TrialResult(trial.number, state, value, params, epochs, seconds))
            log.info(
                "trial %d %s: %s %s after %d epoch(s), %.0f s; %s",
                trial.number,
                state.lower(),
                cfg.train.monitor,
                "-" if value is None else f"{value:.4f}",
                epochs,
                seconds,
                ", ".join(f"{k}={_short(v)}" for k, v in params.items()),
            )

    from negsamp import threads

    with threads.shared(jobs):  # trials at once share torch's process-wide thread count
        study.optimize(objective, n_trials=trials, n_jobs=jobs, catch=())
    outcome.trials.sort(key=lambda t: t.number)
    return outcome, chosen[outcome.best.number]


def _short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
