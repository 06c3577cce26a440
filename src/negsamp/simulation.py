"""The 30-day simulation's script and report (pure: no Prefect, no MLflow, no files).

`negsamp simulate --days N` (flows/simulate.py runs it against a real Prefect server and a
serving endpoint) feeds one batch a day after the synthetic base log. :func:`plan` says what
each day brings, in proportion to N (for N = 30):

- days 1-8, ``quiet``: the base population and popularity (drift 0);
- days 9-21, ``shift``: item popularity moves a little further each day towards another
  ranking (drift 0.05 up to 0.6), with no new item or user: a slow popularity shift;
- day 15, ``broken``: that day's export is broken (a share of its rows lost their item id);
  ingest must refuse it and write nothing;
- days 22-30, ``catalog``: a sudden catalog change on day 22 (drift 1: a new popularity
  ranking, 30% of the popularity mass on items never seen before, new users), which stays.

:func:`batches` builds the days' frames with :func:`negsamp.data.stream.windows` (vectorized,
seeded: the same plan and seed give the same bytes). :func:`summary` and :func:`markdown`
turn the per-day records the driver collects into the report.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

from negsamp.config import SyntheticCfg
from negsamp.data.stream import windows
from negsamp.rng import Stream, numpy_rng

KINDS = ("quiet", "shift", "broken", "catalog")
SHIFT_START, SHIFT_END = 0.05, 0.6  # popularity drift on the first and last shift day
CATALOG_NEW_ITEMS, CATALOG_NEW_USERS = 0.3, 0.1  # shares after the catalog change
BROKEN_SHARE = 0.05  # rows of the broken day's export that lost their item id


@dataclass(frozen=True)
class Day:
    day: int  # 1-based
    kind: str  # one of KINDS
    drift: float  # the window's drift level (see negsamp.data.stream)


def plan(days: int) -> list[Day]:
    """What each of ``days`` (>= 4) days brings: quiet, a slow shift with one broken day,
    then a sudden catalog change that stays (see the module doc)."""
    if days < 4:
        raise ValueError(
            f"--days must be at least 4 (quiet, shift, broken and catalog days), got {days}"
        )
    quiet = max(1, round(days * 0.25))
    catalog = min(days, max(quiet + 3, round(days * 0.7) + 1))  # first catalog day
    shift = list(range(quiet + 1, catalog))  # >= 2 days
    broken = shift[len(shift) // 2]
    ramp = np.linspace(SHIFT_START, SHIFT_END, len(shift))
    out = [Day(d, "quiet", 0.0) for d in range(1, quiet + 1)]
    out += [
        Day(d, "broken" if d == broken else "shift", round(float(r), 4))
        for d, r in zip(shift, ramp, strict=True)
    ]
    out += [Day(d, "catalog", 1.0) for d in range(catalog, days + 1)]
    return out


def batches(
    days: list[Day], base: SyntheticCfg, seed: int, rows_per_day: int | None = None
) -> list[pl.DataFrame]:
    """One raw frame per day of ``days`` (the synthetic base log's schema, sorted by time),
    continuing the base log generated from ``base`` and ``seed``; ``rows_per_day`` defaults
    to the base log's daily rate. The broken day's frame has lost some item ids."""
    rows = rows_per_day or max(1, round(base.n_interactions / base.days))
    before = [d for d in days if d.kind != "catalog"]
    after = [d for d in days if d.kind == "catalog"]
    out = windows(
        base, seed, [d.drift for d in before], rows, new_user_share=0.0, new_item_share=0.0,
        window_days=1,
    )  # fmt: skip
    if after:
        out += windows(
            base, seed, [d.drift for d in after], rows, new_user_share=CATALOG_NEW_USERS,
            new_item_share=CATALOG_NEW_ITEMS, window_days=1, first_window=len(before),
        )  # fmt: skip
    return [
        break_export(b, seed, d.day) if d.kind == "broken" else b
        for d, b in zip(days, out, strict=True)
    ]


def break_export(batch: pl.DataFrame, seed: int, day: int) -> pl.DataFrame:
    """``batch`` as a broken export: :data:`BROKEN_SHARE` of its rows (at least one, seeded)
    have a null item id, as after a failed join upstream."""
    rng = numpy_rng(seed, Stream.DRIFT_WINDOW, 10_000 + day)
    lost = np.zeros(batch.height, dtype=bool)
    lost[rng.choice(batch.height, max(1, round(BROKEN_SHARE * batch.height)), replace=False)] = True
    return batch.with_columns(
        item=pl.when(pl.Series(lost)).then(None).otherwise(pl.col("item")).cast(pl.Int64)
    )


# --- the report ----------------------------------------------------------------------------

COLUMNS = (
    ("day", "day"),
    ("kind", "batch"),
    ("drift", "drift"),
    ("ingest", "ingest"),
    ("signals", "signals fired"),
    ("retrained", "retrained"),
    ("gate", "gate"),
    ("champion", "champion"),
    ("champion_metric", "champion held-out"),
    ("requests", "requests"),
    ("errors", "errors"),
    ("served_versions", "versions served"),
)


def summary(rows: list[dict[str, Any]], switches: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals over the per-day ``rows`` and the server's alias ``switches`` (each with the
    requests it answered during the switch)."""
    return {
        "days": len(rows),
        "batches_ingested": sum(r["ingest"] == "ingested" for r in rows),
        "batches_rejected": sum(r["ingest"].startswith("rejected") for r in rows),
        "retrains": sum(bool(r["retrained"]) for r in rows),
        "promotions": sum(r.get("promoted", False) for r in rows),
        "requests": sum(r["requests"] for r in rows),
        "errors": sum(r["errors"] for r in rows),
        "alias_switches": len(switches),
        "requests_during_switches": sum(s.get("requests", 0) for s in switches),
        "errors_during_switches": sum(s.get("errors", 0) for s in switches),
    }


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, list | tuple):
        return ", ".join(map(str, v)) or "-"
    text = str(v).replace("|", "/")
    return text if len(text) <= 90 else text[:89] + "…"


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: settings, totals, the per-day table and the switches."""
    s = report["summary"]
    lines = [
        f"# negsamp simulate: {s['days']} days",
        "",
        f"Model {report['model_name']} (metric {report['metric']}), {report['rows_per_day']} "
        f"rows a day, seed {report['seed']}; each day the batch is appended with "
        "`negsamp ingest --append` and the drift check runs as the served deployment "
        f"`{report['deployment']}` on the Prefect server at {report['prefect_api']}; a client "
        f"asks `negsamp serve` for top-{report['k']} every {report['request_every_s']} s.",
        "",
        "| " + " | ".join(f"{k}" for k in s) + " |",
        "|" + "---|" * len(s),
        "| " + " | ".join(_cell(v) for v in s.values()) + " |",
        "",
        "| " + " | ".join(h for _, h in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(_cell(r.get(k)) for k, _ in COLUMNS) + " |" for r in report["days"]]
    if report["switches"]:
        lines += [
            "",
            "Alias switches seen by the server (the old version answered until the new one was "
            f"loaded; requests within {report['switch_window_s']:g} s of the switch):",
            "",
            "| from | to | load s | requests around | errors around |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| v{w['from']} | v{w['to']} | {w['swapped_at'] - w['detected_at']:.2f} | "
            f"{w.get('requests', 0)} | {w.get('errors', 0)} |"
            for w in report["switches"]
        ]
    return "\n".join(lines) + "\n"


def day_record(day: Day) -> dict[str, Any]:
    return asdict(day)
