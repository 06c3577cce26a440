"""``negsamp tune``: search the running model's and sampler's settings with Optuna.

No Prefect: the trials run here, in threads (``--jobs``). The data are the project's split
(data/interim/train.parquet and valid.parquet; the stages up to ``split`` are run first
when those are missing); the test split is never read. The best trial is written to
params.yaml as ``sweep.configs.<name>`` through the one override path, so ``dvc repro``
(or ``negsamp run``) trains, evaluates and compares it beside the other configurations.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from negsamp.cli.common import (
    ParamsOpt,
    SetOpt,
    VerboseOpt,
    configure,
    reported,
    root_of,
    setup,
)

if TYPE_CHECKING:
    from negsamp.api import Split
    from negsamp.config import Config
    from negsamp.paths import Paths
    from negsamp.tune import Outcome

log = logging.getLogger(__name__)


def _split_data(cfg: Config, paths: Paths) -> Split:
    """The project's train and validation rows as an API :class:`~negsamp.api.Split`, with
    the test split's (user, item) pairs only to keep them out of the validation item's
    competitors, as the train stage does (issue #18: a user's test item is a positive, not a
    negative), so a trial's value is what the train stage reproduces; no trial is scored on
    test. Runs the stages up to ``split`` when their outputs are missing."""
    import polars as pl

    from negsamp.api import Interactions, Split
    from negsamp.stages import ORDER, run_stage

    needed = (paths.train, paths.valid, paths.test, paths.user_ids, paths.item_ids)
    if not all(p.is_file() for p in needed):
        for name in ORDER[: ORDER.index("split") + 1]:
            typer.echo(f"tune: running stage {name} (its outputs are missing)")
            run_stage(name, cfg, paths)
    train = pl.read_parquet(paths.train)
    valid = pl.read_parquet(paths.valid)
    users = pl.read_parquet(paths.user_ids)["original"]
    items = pl.read_parquet(paths.item_ids)["original"]
    data = Interactions(pl.concat([train, valid]), users, items)
    held = pl.read_parquet(paths.test, columns=["user", "item"])
    return Split(data, train, valid, held, {}, cfg.split)


def tune(
    trials: Annotated[int, typer.Option("--trials", "-n", min=1, help="trials to run")] = 20,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=1, help="trials trained at once (threads)")
    ] = 1,
    name: Annotated[
        str | None,
        typer.Option(
            help="the sweep.configs entry the best trial is written to (default: tuned-<model>)"
        ),
    ] = None,
    prune: Annotated[
        bool,
        typer.Option(help="stop trials whose validation metric is below the median at an epoch"),
    ] = True,
    baseline: Annotated[
        bool,
        typer.Option(
            help="trial 0 trains params.yaml's own settings, so the best is never worse on "
            "validation than what you have"
        ),
    ] = True,
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Tune the model's and sampler's settings on the validation split (Optuna TPE, pruning).

    Searches what each plug-in declares beside its configuration (learning rate, L2 and
    factors of a model; n_neg, alpha, hard fraction of a sampler) for the model and sampler
    params.yaml names, one MLflow run per trial nested under the study's run. The best
    trial on train.monitor (validation) is written to sweep.configs; compare it with
    `negsamp run` or `dvc repro`.
    """
    setup(verbose, params)
    from negsamp.runlock import held

    # it runs the stages up to split and writes params.yaml: one writer per project
    with reported(), held(root_of(params), "tune"):
        cfg = configure(params, set_)
        from negsamp import config, tune
        from negsamp.mlops.tuning import MlflowTracker
        from negsamp.paths import Paths

        root = root_of(params)
        entry_name = name or f"tuned-{cfg.model.name}"
        config.SweepCfg(configs={entry_name: {}})  # a bad name fails before any training
        tune.search_space(cfg)  # so does a train.lr that would shadow the search
        data = _split_data(cfg, Paths(root))
        tracker = MlflowTracker(
            root,
            cfg.registry.experiment,
            f"tune-{cfg.model.name}-{cfg.sampler.name}",
            {"model": cfg.model.name, "sampler": cfg.sampler.name, "config": entry_name},
        )
        tracker.log_study(
            {"trials": trials, "jobs": jobs, "prune": prune, "monitor": cfg.train.monitor}
            | {"baseline": baseline}
            | {"seed": cfg.base.seed, "entry": entry_name}
        )
        try:
            outcome, values = tune.run(
                cfg, data, trials, tracker, jobs=jobs, prune=prune, with_baseline=baseline
            )
        except BaseException:
            tracker.finish(None, None, "FAILED")
            raise
        best = outcome.best
        tracker.finish(best.params, best.value)
        _, changed = config.update(
            params, [(("sweep", "configs", entry_name), tune.entry(cfg, values))]
        )
    _report(outcome, entry_name, params, bool(changed))


def _report(outcome: Outcome, entry_name: str, params: Path, changed: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    best = outcome.best
    keys = list(best.params)
    table = Table(title=f"negsamp tune: valid {outcome.monitor}", title_justify="left")
    for col in ("trial", "state", "value", "epochs", *[k.rsplit(".", 1)[-1] for k in keys]):
        table.add_column(col, justify="right")
    for t in outcome.trials:
        vals = [
            f"{t.params[k]:.4g}" if isinstance(t.params[k], float) else str(t.params[k])
            for k in keys
        ]
        mark = "*" if t.number == best.number else ""
        value = "-" if t.value is None else f"{t.value:.4f}"
        table.add_row(f"{t.number}{mark}", t.state.lower(), value, str(t.epochs), *vals)
    Console(width=100).print(table)
    where = "written to" if changed else "already in"
    typer.echo(
        f"best: trial {best.number} ({best.value:.4f}); {where} {params.name} as "
        f"sweep.configs.{entry_name}; `negsamp run` or `dvc repro` trains and compares it"
    )
