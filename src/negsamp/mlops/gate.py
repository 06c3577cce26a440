"""The champion gate: :func:`register`, the one function that registers a model.

Its order makes sure a failure never changes the registry:

1. check every configuration's inputs, and the challenger's own ``registry.metric``
   (missing or NaN: :class:`RegistrationError`, MLflow not touched);
2. read the champion, once (:func:`negsamp.mlops.champion.read`): the alias, then its run
   and model by version. A tracking server that stays unreachable after MLflow's retries
   fails the run with :class:`TrackingUnavailable` ("the model registry was not changed");
   any other MLflow error is raised as well, never read as "no champion".
   A challenger identical to the champion (:mod:`negsamp.mlops.fingerprint`: same data,
   code and configuration) stops here: no run, no version, the aliases as they were;
3. re-evaluate the champion on the current split (``reevaluate``, given by the stage);
4. decide (:func:`negsamp.promotion.compare`): see that module for the rule. A champion
   whose run or model cannot be loaded is never replaced automatically;
   a promoted challenger is then refit on every interaction (``refit``, given by the stage
   when ``registry.refit``; issue #13), still before any write: a refit that fails fails
   the run with the registry untouched, and a challenger that loses costs no refit;
5. only then log the runs, register the version, and move the aliases last. A
   configuration's run is the one its train stage opened live (:mod:`negsamp.mlops.live`),
   continued, when that run trained the model being registered; a new one otherwise.

A refit version serves the refit and carries the held-out model it won with
(:func:`negsamp.mlops.pyfunc.log_pyfunc`); the champion a later gate re-evaluates is that
held-out model (:mod:`negsamp.mlops.champion`), as the refit has trained on the test
items of the split it would be ranked on.

A failure in step 5 removes the version it created and ends its runs FAILED. A process
killed in step 5 (SIGKILL: nothing runs after it) leaves that to the next registration,
which ends the dead process's runs KILLED and deletes its undecided version first
(:mod:`negsamp.mlops.recovery`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import mlflow
import polars as pl
from mlflow import MlflowClient

from negsamp import faults, promotion
from negsamp.config import Config
from negsamp.metrics.report import Evaluation
from negsamp.mlops import champion as champions
from negsamp.mlops import dataset, fingerprint, lineage, live, recovery, store, tracking
from negsamp.mlops.errors import RegistrationError, is_transient, unavailable
from negsamp.mlops.inputs import challenger_per_user, check_inputs
from negsamp.mlops.pyfunc import log_pyfunc
from negsamp.mlops.registry import (
    CHALLENGER,
    apply_decision,
    delete_version,
    register_version,
)
from negsamp.mlops.uri import tracking_uri
from negsamp.paths import Paths

log = logging.getLogger(__name__)

UNCHANGED = "the model registry was not changed"
Reevaluate = Callable[[champions.Champion], Evaluation]
# the refit of a promoted challenger: its model folder and the version's refit_* tags
Refit = Callable[[], tuple[Path, dict[str, str]]]


@dataclass(frozen=True)
class RegistrationResult:
    run_id: str
    experiment: str
    model_name: str
    version: int
    alias: str
    metric: str
    value: float
    champion_value_before: float | None  # the champion's value on the current split
    champion_version_before: int | None
    promoted: bool
    reason: str
    tracking_uri: str
    parent_run_id: str | None = None  # the sweep's parent run when several configurations
    registered: bool = True  # False: identical to the champion, which ``version`` is

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def register(
    cfg: Config,
    paths: Paths,
    reevaluate: Reevaluate,
    extra_tags: dict[str, str] | None = None,
    best: str | None = None,
    refit: Refit | None = None,
) -> tuple[RegistrationResult, promotion.Decision]:
    """Log every configuration of ``cfg.sweep.configs``, gate ``best``'s model, register it.

    One configuration: one run. Several: a parent run ``sweep-...`` holding the report
    stage's comparison, with a nested child run per configuration. ``reevaluate`` scores
    the champion on this run's test split and candidates. ``refit`` (None: serve the
    held-out model) is called once, only when ``best`` is promoted; its model folder is
    what the version serves. Returns the registration and the decision; raises before
    MLflow is touched when an input is missing or invalid.
    """
    variants = cfg.variants
    best = best or variants[0]
    if best not in variants:
        raise RegistrationError(f"configuration {best!r} is not in sweep.configs {variants}")
    inputs = {v: check_inputs(cfg.variant(v), paths.for_variant(v)) for v in variants}
    if len(variants) > 1 and not paths.comparison.is_file():
        raise RegistrationError(
            f"cannot register a sweep: {paths.comparison} is missing (run `negsamp stage report`)"
        )
    bcfg = cfg.variant(best)
    per_user = challenger_per_user(bcfg, paths.for_variant(best))
    value = inputs[best][0][bcfg.registry.metric]
    uri = tracking_uri(paths.root)
    champion = _read_champion(uri, cfg.registry.model_name)
    fp = fingerprint.compute(bcfg, paths.for_variant(best))
    if fingerprint.same_as_champion(MlflowClient(uri), cfg.registry.model_name, champion, fp):
        return _identical(cfg.registry, champion, bcfg.registry.metric, value, uri)
    decision = dataset.refuse(bcfg, champion, value) or _decide(
        bcfg, per_user, value, champion, reevaluate
    )
    before = None if champion is None else champion.version
    served, version_tags = None, {"refit": "no"}
    if decision.promote and refit is not None:
        served, refit_tags = refit()  # before any write: a failure leaves the registry alone
        version_tags = {"refit": "yes", **refit_tags}
    if fp:
        version_tags[fingerprint.TAG] = fp
    record = _record(
        cfg, paths, best, inputs, extra_tags or {}, uri, decision, before, version_tags, served
    )
    return record, decision


def _read_champion(uri: str, name: str) -> champions.Champion | None:
    try:
        return champions.read(uri, name)
    except Exception as err:
        if is_transient(err):
            raise unavailable(uri, err, UNCHANGED) from err
        err.add_note(f"negsamp: reading the champion of {name} at {uri} failed; {UNCHANGED}")
        raise


def _identical(
    reg: Any, champion: champions.Champion, metric: str, value: float, uri: str
) -> tuple[RegistrationResult, promotion.Decision]:
    """The record of a challenger that is the champion again: nothing logged or registered."""
    reason = f"identical to champion v{champion.version}: not registered again"
    log.info("%s (same data, code and configuration)", reason)
    decision = promotion.Decision(False, reason, metric, value, None)
    result = RegistrationResult(
        run_id=champion.run_id,
        experiment=reg.experiment,
        model_name=reg.model_name,
        version=champion.version,
        alias=champions.CHAMPION,
        metric=metric,
        value=value,
        champion_value_before=None,
        champion_version_before=champion.version,
        promoted=False,
        reason=reason,
        tracking_uri=uri,
        registered=False,
    )
    return result, decision


def _decide(
    cfg: Config,
    per_user: pl.DataFrame | None,
    value: float,
    champion: champions.Champion | None,
    reevaluate: Reevaluate,
) -> promotion.Decision:
    metric = cfg.registry.metric
    if champion is None:
        users = 0 if per_user is None else per_user.height
        return promotion.Decision(True, "no champion yet", metric, value, None, users=users)
    if champion.problem:
        why = (
            f"champion v{champion.version} cannot be evaluated ({champion.problem}): "
            f"not promoted over it; set the 'champion' alias by hand to promote this version"
        )
        return promotion.Decision(False, why, metric, value, None)
    evaluation = reevaluate(champion)
    d = promotion.compare(per_user, value, evaluation, cfg.registry, cfg.base.seed)
    reason = f"vs champion v{champion.version} on the current test split: {d.reason}"
    log.info("champion v%d re-evaluated on the current split: %s", champion.version, d.reason)
    return replace(d, reason=reason)


def _record(
    cfg: Config,
    paths: Paths,
    best: str,
    inputs: dict[str, Any],
    extra: dict[str, Any],
    uri: str,
    decision: promotion.Decision,
    champion_version: int | None,
    version_tags: dict[str, str],
    served: Path | None = None,
) -> RegistrationResult:
    """Step 5: runs, the version, the aliases (last). Cleans up after itself on failure.

    ``version_tags`` (the fingerprint, refit) go on the registered version and its run
    only. ``served``: the refit model folder the version serves (None: ``best``'s own).
    """
    reg, variants = cfg.registry, cfg.variants
    sweep = len(variants) > 1
    extra = {k: str(v) for k, v in extra.items()}
    alias = champions.CHAMPION if decision.promote else CHALLENGER
    value = inputs[best][0][cfg.variant(best).registry.metric]
    mlflow.set_tracking_uri(store.ready(uri))
    client = MlflowClient(uri)
    version = parent_id = run_id = None
    opened: list[str] = []  # live runs continued: ended FAILED too when this fails
    try:
        exp_id = tracking.experiment_id(client, reg.experiment, uri, paths.root)
        mlflow.set_experiment(experiment_id=exp_id)  # start_run(run_id=) checks the active one
        recovery.clean_up_killed(client, exp_id, reg.model_name)  # what a kill -9 left
        mine = recovery.process_tags()  # on the runs only: a later run can tell they died
        if sweep:
            commit, dirty = lineage.git_state(paths.root)
            name = f"sweep-{len(variants)}x-{commit[:7]}-{time.strftime('%Y%m%d-%H%M%S')}"
            tags = {"negsamp.kind": "sweep", "git_commit": commit, "git_dirty": dirty} | extra
            tags["configs"] = ",".join(variants)
            parent_id = mlflow.start_run(
                experiment_id=exp_id, run_name=name, tags=tags | mine
            ).info.run_id
        for v in variants:
            vcfg, vpaths = cfg.variant(v), paths.for_variant(v)
            tags = lineage.lineage_tags(vcfg, vpaths, v) | extra
            tags |= {"negsamp.kind": "configuration", live.LOGGED_TAG: "true"}
            if sweep:
                tags |= {"negsamp.kind": "sweep-child", "sweep_run_id": parent_id}
                tags["mlflow.parentRunId"] = parent_id
            # the run the train stage opened while this model trained, continued
            trained = live.find(client, exp_id, vcfg, vpaths, v)
            run = mlflow.start_run(
                run_id=trained,
                experiment_id=None if trained else exp_id,
                run_name=None if trained else live.run_name(vcfg, v, sweep),
                tags=tags | mine,
                nested=sweep,
            )
            if trained:
                opened.append(trained)
            tracking.log_configuration(client, run.info.run_id, vcfg, vpaths, *inputs[v])
            if v == best:
                run_id = run.info.run_id
                model_uri = log_pyfunc(vpaths, served)
                version = register_version(model_uri, reg.model_name, tags | version_tags)
                faults.point("register:version")  # a crash before the aliases move
                mlflow.set_tags(
                    {"registry.version": str(version), "registry.alias": alias} | version_tags
                )
            mlflow.end_run("FINISHED")
        if parent_id:
            tracking.log_comparison(client, parent_id, paths)
            client.set_tag(parent_id, "registry.version", str(version))
            client.set_tag(parent_id, "registry.alias", alias)
            mlflow.end_run("FINISHED")
        apply_decision(client, reg.model_name, version, decision, champion_version, value)
    except BaseException as err:
        removed = _clean_up(client, reg.model_name, version, [run_id, parent_id, *opened])
        if isinstance(err, Exception) and is_transient(err):
            raise unavailable(uri, err, _outcome(reg.model_name, version, removed)) from err
        raise
    return RegistrationResult(
        run_id=run_id,
        experiment=reg.experiment,
        model_name=reg.model_name,
        version=version,
        alias=alias,
        metric=decision.metric,
        value=value,
        champion_value_before=decision.champion,
        champion_version_before=champion_version,
        promoted=decision.promote,
        reason=decision.reason,
        tracking_uri=uri,
        parent_run_id=parent_id,
    )


def _clean_up(client: MlflowClient, name: str, version: int | None, runs: list) -> bool:
    """After a failure: remove the version it created, end every run it opened FAILED.

    Returns whether the registry is back as it was (no version created, or removed again).
    """
    removed = version is None or delete_version(client, name, version)
    tracking.end_runs("FAILED")
    for run_id in filter(None, runs):
        try:
            client.set_terminated(run_id, "FAILED")
        except Exception:  # noqa: BLE001 - cleaning up after another error
            log.warning("could not mark run %s FAILED", run_id, exc_info=True)
    return removed


def _outcome(name: str, version: int | None, removed: bool) -> str:
    if version is None:
        return UNCHANGED
    if removed:
        return f"the version it had registered ({name} v{version}) was removed again"
    return f"{name} v{version}, registered before the failure, remains: delete it by hand"
