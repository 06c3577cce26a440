"""Stage ``synthesize``: write the synthetic interaction log ingest reads by default."""

from __future__ import annotations

import logging
import time
from typing import Any

from negsamp.config import Config
from negsamp.data.synthetic import generate
from negsamp.io import write_parquet
from negsamp.paths import Paths
from negsamp.stages.spec import SHARED, StageSpec, rel, src

SPEC = StageSpec(
    name="synthesize",
    params=("base.seed", "data.synthetic"),
    deps=(),
    code=src("data/synthetic.py", "rng.py", "stages/synthesize.py"),
    outs=rel(SHARED.raw_synthetic),
)

log = logging.getLogger(__name__)


@SPEC.enforce
def run(cfg: Config, paths: Paths = Paths()) -> dict[str, Any]:
    """Generate ``data.synthetic`` with ``base.seed`` and write ``paths.raw_synthetic``.

    Reads only ``data.synthetic`` and ``base.seed``. Returns a summary:
    ``{"path", "rows", "users", "items"}``.
    """
    start = time.perf_counter()
    df = generate(cfg.data.synthetic, cfg.base.seed)
    write_parquet(paths.raw_synthetic, df)
    summary = {
        "path": str(paths.raw_synthetic),
        "rows": df.height,
        "users": df["user"].n_unique(),
        "items": df["item"].n_unique(),
    }
    log.info(
        "synthesized %d events (%d users, %d items) into %s in %.2fs",
        summary["rows"],
        summary["users"],
        summary["items"],
        paths.raw_synthetic,
        time.perf_counter() - start,
    )
    return summary
