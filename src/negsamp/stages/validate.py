"""Stage ``validate``: run the Great Expectations suite on the ingested interactions.

Reads  data/interim/interactions.parquet (user Int32, item Int32, count Int32,
       timestamp Int64), user_ids.parquet and item_ids.parquet (their row counts
       are n_users and n_items).
Writes data/validation/result.json only when every expectation passes (downstream
       stages depend on it, so its presence means "validated"); on failure writes
       data/validation/failed.json instead, removes any result.json and raises
       :class:`~negsamp.validate.ValidationFailed` whose message explains each failure.
"""

from __future__ import annotations

import logging
from typing import Any

import polars as pl

from negsamp.config import Config
from negsamp.io import write_json
from negsamp.paths import Paths
from negsamp.split import min_needed
from negsamp.stages.common import catalog_size, original_users, require
from negsamp.stages.spec import SHARED, StageSpec, rel, src
from negsamp.validate import ValidationFailed, validate_interactions

SPEC = StageSpec(
    name="validate",
    # split's two keys decide how many interactions a user needs (split.min_needed)
    params=("validate", "split.min_interactions", "split.validation"),
    deps=rel(SHARED.interactions, SHARED.user_ids, SHARED.item_ids),
    code=src("validate.py", "split.py", "stages/validate.py"),
    outs=rel(SHARED.validation_result),
)

log = logging.getLogger(__name__)

FAILED_NAME = "failed.json"


@SPEC.enforce
def run(cfg: Config, paths: Paths = Paths()) -> dict[str, Any]:
    """Validate the interactions; return a small summary dict or raise ValidationFailed."""
    require(paths.interactions, paths.user_ids, paths.item_ids)
    n_users, n_items = catalog_size(paths)
    df = pl.read_parquet(paths.interactions)
    report = validate_interactions(
        df,
        n_users=n_users,
        n_items=n_items,
        cfg=cfg.validate_,
        min_interactions=min_needed(cfg.split),
        source=str(paths.interactions),
        users=original_users(paths).tolist(),
    )
    failed = paths.validation_dir / FAILED_NAME
    if not report.success:
        # result.json must never outlive a failing run: downstream stages read it as a pass
        paths.validation_result.unlink(missing_ok=True)
        write_json(failed, report.to_json())
        log.error("validation failed; report in %s", failed)
        raise ValidationFailed(report, f"{report.summary()}\nFull report: {failed}")
    write_json(paths.validation_result, report.to_json())
    failed.unlink(missing_ok=True)
    log.info("validation passed: %s", report.summary())
    return {
        "success": True,
        "rows": report.n_rows,
        "n_users": n_users,
        "n_items": n_items,
        "expectations": report.evaluated,
        "result": str(paths.validation_result),
    }
