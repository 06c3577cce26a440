"""What a model version is made of, as one hash: is a challenger the champion again?

The fingerprint (tag ``fingerprint`` on the version and its run) hashes what determines
the model: the code (git commit, only when the working tree is clean), the active
configuration without the sections that only decide what happens around the model
(:data:`NOT_THE_MODEL`; but ``registry.refit``, which decides whether the version serves
a refit or the held-out model), and the DVC-compatible md5s of the data, the splits, the training
pool and the evaluation candidates. The gate registers no new version when the champion's
version carries the same fingerprint (issue #13: nine identical versions in an afternoon).

Uncommitted changes to tracked files or no git repository: there is no fingerprint
(None), so such a model is never taken for the champion: the code that built it cannot be
identified. Changes to params.yaml, dvc.lock and ``*.dvc`` files do not count as dirty: what
they hold is in the fingerprint already (the configuration, the data md5s), and a
``--set`` override or a ``dvc repro`` leaves them modified.
Imports no MLflow: it reads the champion's tag through the client it is given.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

from negsamp.config import Config, dump
from negsamp.io import md5_file
from negsamp.paths import Paths

log = logging.getLogger(__name__)

TAG = "fingerprint"
# when to retrain, where to register, what else a sweep compares: not what the model is
NOT_THE_MODEL = ("registry", "sweep", "drift", "schedule", "recommend")
# tracked files whose content the fingerprint holds already (configuration, data md5s)
_RECORDED = (
    ":(top,exclude,glob)**/params.yaml",
    ":(top,exclude,glob)**/dvc.lock",
    ":(top,exclude,glob)**/*.dvc",
)


def code_state(root: Path) -> tuple[str, bool | None]:
    """(HEAD commit, dirty: tracked files other than :data:`_RECORDED` changed); dirty is
    None outside a git repository or when git fails."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # read-only: never refresh the index
    kw: dict[str, Any] = dict(cwd=root, capture_output=True, text=True, timeout=20, env=env)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], check=True, **kw).stdout.strip()
        cmd = ["git", "status", "--porcelain", "-uno", "--", ":/", *_RECORDED]
        status = subprocess.run(cmd, check=True, **kw).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown", None
    return commit, bool(status.strip())


def inputs(paths: Paths) -> dict[str, str | None]:
    """md5 of every file the model and its evaluation are built from (None: absent)."""
    files = {"data": paths.interactions, "train": paths.train, "valid": paths.valid}
    files |= {"test": paths.test, "train_pool": paths.train_pool}
    files |= {"eval_candidates": paths.eval_candidates}
    return {k: md5_file(p) if p.is_file() else None for k, p in files.items()}


def compute(cfg: Config, paths: Paths) -> str | None:
    """sha256 hex of (git commit, active configuration, input md5s); None when the code's
    state is dirty or unknown. ``cfg``/``paths``: the registered configuration's own."""
    commit, dirty = code_state(paths.root)
    if dirty is not False:
        state = "uncommitted changes" if dirty else "no git repository"
        log.info("%s in %s: no fingerprint, so never identical to the champion", state, paths.root)
        return None
    config = {k: v for k, v in dump(cfg, active_only=True).items() if k not in NOT_THE_MODEL}
    doc = {"git_commit": commit, "config": config, "inputs": inputs(paths)}
    doc["refit"] = cfg.registry.refit  # the version serves a refit or the held-out model (#13)
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def same_as_champion(client: Any, name: str, champion: Any, fingerprint: str | None) -> bool:
    """Whether ``champion`` (a readable :class:`~negsamp.mlops.champion.Champion`, or None)
    has ``fingerprint`` as its version's tag. A champion with a problem never matches, so
    a usable version is registered beside it."""
    if fingerprint is None or champion is None or champion.problem:
        return False
    mv = client.get_model_version(name, str(champion.version))
    return mv.tags.get(TAG) == fingerprint
