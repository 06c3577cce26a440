"""Lineage tags of a configuration's run: where its inputs came from and how to rebuild it.

Git commit and dirty flag, the plug-in names, DVC-compatible md5s of the raw data, the
interactions, the split, the training pool, the evaluation candidates and the weights,
and the command that reproduces the run (``dvc repro evaluate@<configuration>``).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from negsamp.config import PARAMS_FILE, Config
from negsamp.io import md5_file, read_json
from negsamp.mlops import dataset
from negsamp.models import WEIGHTS_FILE
from negsamp.paths import Paths


def git_state(root: Path) -> tuple[str, str]:
    """(commit, "true"/"false" dirty in tracked files); ("unknown", "unknown") outside a repo."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # read-only: never refresh the index
    try:
        kw: dict[str, Any] = dict(cwd=root, capture_output=True, text=True, timeout=20, env=env)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], check=True, **kw).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "-uno"], check=True, **kw)
    except (OSError, subprocess.SubprocessError):
        return "unknown", "unknown"
    return commit, str(bool(status.stdout.strip())).lower()


def reproduce_command(commit: str, dirty: str, variant: str, entry: str | None = None) -> str:
    """The command that rebuilds configuration ``variant``'s model and metrics; ``entry``
    (its sweep.configs entry as JSON) when params.yaml does not declare it (a --grid run
    that was not kept): then the configuration is given on the command line."""
    if entry is not None:
        cmd = (
            f"git checkout {commit} && negsamp sweep --no-record --set "
            f"'sweep.configs={{\"{variant}\": {entry}}}'  # a --grid configuration, not in params.yaml"
        )
        return cmd + (" (the run had uncommitted changes)" if dirty == "true" else "")
    # --pull fetches missing inputs (appended batches) from the DVC remote where one is set
    cmd = f"git checkout {commit} && dvc repro --pull evaluate@{variant}"
    if dirty == "true":
        cmd += "  # the run had uncommitted changes: this commit may differ from what ran"
    return cmd


def _undeclared(cfg: Config, paths: Paths, variant: str) -> str | None:
    """None when the project's params.yaml declares configuration ``variant`` as ``cfg``
    (the configuration applied: what ran); else a patch of the sections a configuration
    sets (sampler, model, train; the active plug-ins in full) as JSON, which rebuilds it on
    any params.yaml: a --grid run that was not kept (issue #15)."""
    from negsamp.config import ConfigError, dump, load

    try:
        declared = load(paths.root / PARAMS_FILE)
    except ConfigError:
        return None  # another params file (--params): say what DVC would do
    if variant in declared.sweep.configs and cfg in (declared.variant(variant), declared):
        return None
    doc = dump(cfg, active_only=True)
    return json.dumps({k: doc[k] for k in ("sampler", "model", "train")}, sort_keys=True)


def lineage_tags(cfg: Config, paths: Paths, variant: str | None = None) -> dict[str, str]:
    """Git state, plug-in names, DVC-compatible md5s of every input and the reproduce command.

    ``variant`` is the configuration's name in ``sweep.configs`` (its DVC stage is
    ``evaluate@<variant>``); ``paths`` must already point at that configuration.
    """
    variant = variant or paths.variant
    commit, dirty = git_state(paths.root)
    tags = {"git_commit": commit, "git_dirty": dirty, "sampler": cfg.sampler.name}
    active = cfg.sampler.active
    n_neg = None if active.name == "in_batch" else active.n_neg  # hard: its k
    tags |= {"model": cfg.model.name, "n_neg": "batch" if n_neg is None else str(n_neg)}
    tags |= {"config": variant, "dvc_stage": f"evaluate@{variant}"}
    tags[dataset.TAG] = dataset.identity(cfg)  # the gate compares only within one dataset
    tags["reproduce"] = reproduce_command(commit, dirty, variant, _undeclared(cfg, paths, variant))
    raw = Path(cfg.data.path)
    raw = raw if raw.is_absolute() else paths.root / raw
    files = {"raw": raw, "data": paths.interactions, "train": paths.train, "test": paths.test}
    files |= {"train_pool": paths.train_pool, "eval_candidates": paths.eval_candidates}
    files |= {"valid": paths.valid, "weights": paths.model_dir / WEIGHTS_FILE}
    tags |= {f"{k}_md5": md5_file(p) for k, p in files.items() if p.is_file()}
    return tags | ingest_tags(paths)


def ingest_tags(paths: Paths) -> dict[str, str]:
    """How ingest read the log (ingest.json): the timestamp format, detected or set, and the
    weight column; none before ingest ran."""
    if not paths.ingest_report.is_file():
        return {}
    report = read_json(paths.ingest_report)
    read_as = report.get("timestamp_parsed_as")
    weight = report.get("weight") or {}
    return {
        "timestamp_format": str(report.get("timestamp_format", "auto")),
        "timestamp_parsed_as": "none" if read_as is None else str(read_as),
        "weight_column": str(weight.get("column") or "none"),
    }
