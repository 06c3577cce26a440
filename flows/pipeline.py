"""The pipeline flow: the same stage functions dvc.yaml calls, run as Prefect tasks.

synthesize -> ingest -> validate -> split -> candidates, then for every configuration in
``sweep.configs`` (``sweep.concurrency`` at a time) sample-negatives -> train -> evaluate,
then report (the side-by-side comparison), register (every configuration logged to
MLflow, the best through the champion gate) and recommend (the registered configuration's
top-K for every known user, data/recommendations/), and finally record the outputs with DVC
(`dvc commit`, `dvc push` where a remote is set) so `dvc repro` finds nothing to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from flows import errors
from flows.artifacts import publish_run
from flows.engine import runs_on
from flows.results import collect
from negsamp import config, dvcops
from negsamp.config import Config
from negsamp.paths import Paths
from negsamp.runner import run_stage
from negsamp.stages import ORDER, PER_VARIANT

# A failed expectation or a registry decision is never worth a retry; in the other stages
# only a non-deterministic failure is retried (flows.errors.retry_condition).
RETRIES = {"validate": 0, "register": 0}


def _task(name: str):  # noqa: ANN202 - a Prefect Task
    def body(cfg: Config, paths: Paths, variant: str | None = None, **extra: Any) -> Any:
        try:
            return run_stage(name, cfg, paths, variant, **extra)
        except errors.DETERMINISTIC as err:
            errors.remember(err)  # the CLI prints it once; Prefect's restatements are dropped
            raise

    # NO_CACHE: stages read and write files, so equal inputs never mean equal work (with
    # persisted results Prefect's default policy "cached" ingest from synthesize's result)
    return task(
        name=name,
        retries=RETRIES.get(name, 1),
        retry_delay_seconds=2,
        retry_condition_fn=errors.retry_condition,
        cache_policy=NO_CACHE,
    )(body)


@task(name="dvc-record", cache_policy=NO_CACHE)
def record(root: str) -> dict[str, bool]:
    return dvcops.record(Path(root))


def run_all(cfg: Config, root: str, record_outputs: bool) -> dict[str, Any]:
    """Every stage of ``cfg`` in project ``root`` inside the current flow run; returns each
    configuration's metrics, the comparison, the registration and the recommendations'
    manifest."""
    errors.install()
    logger = get_run_logger()
    paths = Paths(Path(root).resolve())
    first = ORDER.index(min(PER_VARIANT, key=ORDER.index))
    before = list(ORDER[:first])
    # synthesize feeds ingest only when the data is synthetic; otherwise its output is DVC
    # bookkeeping (dvc.yaml declares it), written after a successful run, never before a
    # failing one
    deferred = cfg.data.source != "synthetic"
    if deferred:
        before.remove("synthesize")
    chain = [n for n in ORDER if n in PER_VARIANT]
    after = [n for n in ORDER[first:] if n not in PER_VARIANT]  # report, register, recommend
    for name in before:
        _task(name)(cfg, paths)
    tasks = {name: _task(name) for name in chain}
    from negsamp import threads  # imports torch: not at the CLI's start

    variants = cfg.variants
    # configurations at once share torch's process-wide thread count (negsamp.threads)
    with threads.shared(min(cfg.sweep.concurrency, len(variants))):
        for lo in range(0, len(variants), cfg.sweep.concurrency):
            futures = []
            for v in variants[lo : lo + cfg.sweep.concurrency]:
                fut = None
                for name in chain:
                    fut = (
                        tasks[name]
                        .with_options(task_run_name=f"{name}[{v}]")
                        .submit(cfg, paths, v, wait_for=[fut] if fut else [])
                    )
                    futures.append(fut)
            # in chain order: a failed stage raises its own error, not its successor's
            # UnfinishedRun (a task whose upstream failed never runs)
            for fut in futures:
                fut.result()
    # lineage: the MLflow runs name the Prefect flow run that produced them
    tags = {"prefect_flow_run_id": str(flow_run.id), "prefect_flow_name": str(flow_run.flow_name)}
    tags |= runs_on(cfg)  # the engine (local, or ray and the cluster's size)
    for name in after:
        if name == "register":
            _task(name)(cfg, paths, extra_tags=tags)
        else:
            _task(name)(cfg, paths)
    if record_outputs:
        if deferred:
            _task("synthesize")(cfg, paths)
        record(str(paths.root))
    logger.info("pipeline finished: %d configuration(s)", len(variants))
    result = collect(list(variants), paths)
    publish_run(result, f"{flow_run.flow_name}: {len(variants)} configuration(s)")
    return result


@flow(name="negsamp-pipeline", log_prints=True)
def pipeline(cfg: Config, root: str = ".", record_outputs: bool = True) -> dict[str, Any]:
    """Run every stage of the validated ``cfg`` in project ``root``; returns each
    configuration's metrics, the comparison and the registration."""
    return run_all(cfg, root, record_outputs)


# persist_result: the drift check (and `negsamp simulate`) read a deployment run's result
@flow(name="negsamp-retrain", log_prints=True, persist_result=True)
def retrain(params: str = "params.yaml", record_outputs: bool = True) -> dict[str, Any]:
    """The deployments' entry point: parse ``params`` as it is when the run starts (a
    scheduled retrain must see today's params.yaml, appended data included), then run
    every stage. Its folder is the project root."""
    cfg = config.load(params)
    root = str(Path(params).resolve().parent)
    if cfg.base.engine == "ray":  # the runner is the flow's: a subflow on Ray's
        from flows.engine import bind

        return bind(pipeline, cfg)(cfg, root=root, record_outputs=record_outputs)
    return run_all(cfg, root, record_outputs)
