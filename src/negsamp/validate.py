"""Great Expectations checks on the ingested interactions (pure logic, no file I/O).

The frame checked is ``data/interim/interactions.parquet``: one row per distinct
(user, item) pair with ``user`` Int32 in [0, n_users), ``item`` Int32 in [0, n_items),
``count`` Int32 >= 1 (aggregated events) and ``timestamp`` Int64 unix seconds.
A second, per-user frame (``n_interactions`` int64 [n_users], indexed by user id)
carries the leave-one-out check with GX's ``mostly``.

Great Expectations has no Polars engine, so the frames are converted to pandas
here and nowhere else. A fresh ephemeral context per call costs ~30 ms; the
expensive part, importing GX (~3 s), happens once per process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from negsamp.config import ValidateCfg

log = logging.getLogger(__name__)

REQUIRED: tuple[str, ...] = ("user", "item", "count", "timestamp")
# pandas dtypes GX may see (see _to_pandas); GX looks nullable ones up as pd.<name>
_INT_TYPES = ["int64", "uint64", "Int64Dtype", "UInt64Dtype"]
_VOLATILE = {"id", "validation_id", "run_id", "validation_time", "ge_load_time"}


class ValidationFailed(ValueError):
    """The interactions broke the expectation suite; ``str(err)`` is the report's summary."""

    def __init__(self, report: ValidationReport, message: str | None = None) -> None:
        super().__init__(message or report.summary())
        self.report = report


@dataclass(frozen=True)
class Failure:
    """One failed expectation, in words a user can act on."""

    name: str  # e.g. "no nulls in column item"
    expectation: str  # GX type, e.g. "expect_column_values_to_not_be_null"
    column: str | None
    unexpected_count: int | None  # bad rows (or users, for the per-user check)
    unit: str  # "rows" or "users"
    examples: list[dict[str, Any]]  # {"row": i, "value": v} or {"user": u, "n_interactions": n}
    detail: str = ""  # observed value / found columns, where there are no examples
    hint: str = ""


@dataclass(frozen=True)
class ValidationReport:
    """The suite's verdict; ``failures`` in suite order, empty when ``success``."""

    success: bool
    source: str
    n_rows: int
    n_users: int
    n_items: int
    evaluated: int
    failures: list[Failure] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)  # per-user counts, for information
    gx_result: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data; ``gx_result`` holds GX's own results (volatile ids removed)."""
        return asdict(self)

    def summary(self) -> str:
        head = (
            f"{self.source}: {self.n_rows:,} rows, {self.n_users:,} users, {self.n_items:,} items"
        )
        if self.success:
            share = self.stats.get("eligible_user_share")
            tail = "" if share is None else f" ({share:.1%} of users eligible for leave-one-out)"
            return f"{head}: all {self.evaluated} expectations passed{tail}"
        lines = [
            f"data validation failed for {head}: "
            f"{len(self.failures)} of {self.evaluated} expectations failed"
        ]
        for f in self.failures:
            where = f" (column {f.column})" if f.column else ""
            n = f.unexpected_count
            bad = "" if n is None else f": {n:,} bad {f.unit if n != 1 else f.unit[:-1]}"
            lines.append(f"  - {f.name}{where}{bad}")
            if f.detail:
                lines.append(f"      {f.detail}")
            if f.examples:
                lines.append(
                    "      e.g. " + "; ".join(_fmt_example(e, f.column) for e in f.examples)
                )
            if f.hint:
                lines.append(f"      -> {f.hint}")
        lines.append(
            "What to do: fix the source data (or the ingest stage) and re-run, or, if the data "
            "is right, adjust validate.* (or split.min_interactions) in params.yaml."
        )
        return "\n".join(lines)


def _fmt_example(e: dict[str, Any], column: str | None) -> str:
    if "row" not in e:
        return ", ".join(f"{k}={v}" for k, v in e.items())
    v = e["value"]
    text = "null" if v is None else str(v)
    if column == "timestamp" and isinstance(v, int) and -(2**37) < v < 2**37:
        text += f" ({datetime.fromtimestamp(v, UTC):%Y-%m-%d})"
    return f"row {e['row']}: {text}"


def iso_to_unix(text: str, key: str) -> int:
    """``"2100-01-01"`` -> 4102444800 (naive dates and times are read as UTC)."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{key}={text!r} is not an ISO date like 2024-01-31") from None
    return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp())


def _gx() -> Any:
    """Import GX lazily (≈3 s) with analytics off."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx


def _expectations(
    df: pl.DataFrame, n_users: int, n_items: int, cfg: ValidateCfg
) -> tuple[list[Any], set[str]]:
    """The interactions suite, skipping checks on absent or non-integer columns."""
    import great_expectations.expectations as gxe

    def m(name: str, column: str | None, hint: str = "", detail: str = "") -> dict[str, Any]:
        return {"name": name, "column": column, "hint": hint, "detail": detail}

    lo = iso_to_unix(cfg.min_timestamp, "validate.min_timestamp")
    hi = iso_to_unix(cfg.max_timestamp, "validate.max_timestamp")
    ints = {c for c in REQUIRED if c in df.columns and df.schema[c].is_integer()}
    found = f"found columns: {', '.join(df.columns) or '(none)'}"
    ex: list[Any] = [
        gxe.ExpectTableRowCountToBeBetween(
            min_value=1, meta=m("table is not empty", None, "the ingest stage produced no rows")
        )
    ]
    for c in REQUIRED:
        hint = "ingest must write user, item, count, timestamp"
        ex.append(gxe.ExpectColumnToExist(column=c, meta=m(f"column {c} exists", c, hint, found)))
        if c in df.columns:
            ex.append(
                gxe.ExpectColumnValuesToBeInTypeList(
                    column=c, type_list=_INT_TYPES, meta=m(f"column {c} has an integer type", c)
                )
            )
            ex.append(
                gxe.ExpectColumnValuesToNotBeNull(column=c, meta=m(f"no nulls in column {c}", c))
            )
    reingest = "ids must be dense codes from data/interim/{}_ids.parquet: re-run ingest"
    ranges = {  # column: (min, max, name, hint)
        "user": (0, n_users - 1, f"user ids in [0, n_users-1] = [0, {n_users - 1}]", reingest),
        "item": (0, n_items - 1, f"item ids in [0, n_items-1] = [0, {n_items - 1}]", reingest),
        "count": (1, None, "count >= 1", "count holds aggregated events and must be positive"),
        "timestamp": (
            lo,
            hi,
            f"timestamp between {cfg.min_timestamp} and {cfg.max_timestamp}",
            f"unix seconds in [{lo}, {hi}]; adjust validate.min_timestamp/max_timestamp",
        ),
    }
    if "timestamp" in ints and not has_timestamps(df):
        del ranges["timestamp"]  # a log without timestamps (every one 0) is valid as it is
    for c in REQUIRED:
        if c in ints and c in ranges:
            lo_c, hi_c, name, hint = ranges[c]
            ex.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=c, min_value=lo_c, max_value=hi_c, meta=m(name, c, hint.format(c))
                )
            )
    if {"user", "item"} <= set(df.columns):
        name = "no duplicate (user, item) rows"
        hint = "ingest must aggregate repeated events into count"
        ex.append(
            gxe.ExpectCompoundColumnsToBeUnique(
                column_list=["user", "item"],
                ignore_row_if="any_value_is_missing",  # nulls are the null check's to report
                meta=m(name, "user, item", hint),
            )
        )
    for i, e in enumerate(ex):
        e.meta["order"] = i  # GX returns results grouped by metric; report in suite order
    return ex, ints


def has_timestamps(df: pl.DataFrame) -> bool:
    """False when the log had no timestamps: ingest wrote 0 for every one (see encode)."""
    ts = df.get_column("timestamp")
    return bool(ts.len()) and not bool((ts.fill_null(0) == 0).all())


def _per_user(df: pl.DataFrame, n_users: int) -> Any:
    """pandas frame ``n_interactions`` int64 [n_users], index = user id (0 for absent users)."""
    import pandas as pd

    users = df.get_column("user").drop_nulls()
    users = users.filter((users >= 0) & (users < n_users)).to_numpy()
    counts = np.bincount(users.astype(np.int64), minlength=n_users)
    return pd.DataFrame({"n_interactions": counts})


def _to_pandas(df: pl.DataFrame) -> Any:
    """The GX copy of ``df``: integer columns widened to int64, nullable Int64 if they hold nulls.

    Widening matters for speed: GX's between-check is vectorized only for int64/float64
    and falls back to a Python call per value for int32 (1M rows: 0.4 s vs 3 s).
    Nullable Int64 keeps a column with nulls integer (plain pandas would make it float64).
    """
    import pandas as pd
    import pyarrow as pa

    wide = [c for c, t in df.schema.items() if t.is_integer() and t != pl.UInt64]
    pdf = df.with_columns(pl.col(wide).cast(pl.Int64))
    if not any(pdf[c].null_count() for c in wide):
        return pdf.to_pandas()
    return pdf.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)


def _run_suite(ctx: Any, name: str, expectations: list[Any], pdf: Any, n_examples: int) -> Any:
    gx = _gx()
    bd = (
        ctx.data_sources.add_pandas(name)
        .add_dataframe_asset(name)
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = ctx.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
    vd = ctx.validation_definitions.add(gx.ValidationDefinition(name=name, data=bd, suite=suite))
    fmt = {"result_format": "SUMMARY", "partial_unexpected_count": n_examples}
    return vd.run(batch_parameters={"dataframe": pdf}, result_format=fmt)


def _stable(obj: Any) -> Any:
    """Drop run ids and clock times so the same data gives the same report bytes."""
    if isinstance(obj, dict):
        return {k: _stable(v) for k, v in obj.items() if k not in _VOLATILE}
    if isinstance(obj, list):
        return [_stable(v) for v in obj]
    return obj


def _failure(
    res: dict[str, Any], per_user: bool, n_examples: int, users: Sequence[Any] | None = None
) -> Failure:
    cfg_ = res["expectation_config"]
    meta, result = cfg_.get("meta") or {}, res.get("result") or {}
    idx = result.get("partial_unexpected_index_list") or []
    vals = result.get("partial_unexpected_list") or []
    if per_user:  # named by the file's id where the caller gave the id map
        name = (lambda i: users[i]) if users is not None else (lambda i: i)
        examples = [{"user": name(i), "n_interactions": v} for i, v in zip(idx, vals, strict=False)]
    else:
        examples = [{"row": i, "value": v} for i, v in zip(idx, vals, strict=False)]
    detail = meta.get("detail", "")
    if "observed_value" in result and not detail:
        detail = f"observed: {result['observed_value']}"
    if per_user and result.get("unexpected_percent") is not None:
        allowed = 100 * (1 - cfg_["kwargs"].get("mostly", 1.0))
        detail = f"{result['unexpected_percent']:.1f}% of users fall short; at most {allowed:.0f}%"
    if res.get("exception_info", {}).get("raised_exception"):
        detail = f"GX error: {res['exception_info'].get('exception_message')}"
    hint = meta.get("hint", "")
    if meta.get("column") == "timestamp" and 0 in vals:
        hint += (
            "; 0 means some rows had no timestamp: give every row one, or set "
            "data.columns.timestamp: null if the log has no time"
        )
    return Failure(
        name=meta.get("name", cfg_["type"]),
        expectation=cfg_["type"],
        column=meta.get("column"),
        unexpected_count=result.get("unexpected_count"),
        unit="users" if per_user else "rows",
        examples=examples[:n_examples],
        detail=detail,
        hint=hint,
    )


def _per_user_expectation(share: float, min_interactions: int) -> Any:
    """The leave-one-out check on the per-user frame: ``mostly`` = the eligible share."""
    gxe = _gx().expectations
    hint = (
        "leave-one-out needs enough history per user; lower split.min_interactions or "
        "validate.min_eligible_user_share, or use more data"
    )
    return gxe.ExpectColumnValuesToBeBetween(
        column="n_interactions",
        min_value=min_interactions,
        mostly=share,
        meta={
            "name": f"at least {share:.0%} of users have >= {min_interactions} interactions",
            "column": "user",
            "hint": hint,
        },
    )


def validate_interactions(
    df: pl.DataFrame,
    n_users: int,
    n_items: int,
    cfg: ValidateCfg,
    min_interactions: int,
    source: str,
    users: Sequence[Any] | None = None,
) -> ValidationReport:
    """Run the expectation suite on ``df`` and explain every failure.

    ``df``: interactions (user Int32, item Int32, count Int32, timestamp Int64), rows
    in file order, so GX's pandas index is the row number in the Parquet file.
    ``min_interactions``: rows a user needs for the leave-one-out split; at least
    ``cfg.min_eligible_user_share`` of the ``n_users`` users must have that many.
    ``source``: the file name quoted in messages. ``users``: the original id of each
    internal user id, so the per-user examples name the file's users.
    """
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    expectations, ints = _expectations(df, n_users, n_items, cfg)
    n_ex = cfg.failure_examples
    runs = {"interactions": _run_suite(ctx, "interactions", expectations, _to_pandas(df), n_ex)}
    stats: dict[str, Any] = {}
    if "timestamp" in ints:
        stats["has_timestamps"] = has_timestamps(df)
    if "user" in ints:
        pdf = _per_user(df, n_users)
        check = _per_user_expectation(cfg.min_eligible_user_share, min_interactions)
        runs["per_user"] = _run_suite(ctx, "per_user", [check], pdf, n_ex)
        counts = pdf["n_interactions"].to_numpy()
        floor = cfg.min_interactions_per_user  # informative only: never fails the suite
        stats |= {
            "users_with_interactions": int((counts > 0).sum()),
            "min_interactions": min_interactions,
            "eligible_user_share": float((counts >= min_interactions).mean()) if n_users else 0.0,
            "min_interactions_per_user": floor,
            "users_below_min_interactions_per_user": int((counts < floor).sum()),
        }
    raw = {k: _stable(r.to_json_dict()) for k, r in runs.items()}
    bad = [(k, res) for k, r in raw.items() for res in r["results"] if not res["success"]]
    bad.sort(key=lambda t: (t[0] == "per_user", t[1]["expectation_config"]["meta"].get("order", 0)))
    report = ValidationReport(
        success=not bad,
        source=source,
        n_rows=df.height,
        n_users=n_users,
        n_items=n_items,
        evaluated=sum(len(r["results"]) for r in raw.values()),
        failures=[_failure(res, k == "per_user", n_ex, users) for k, res in bad],
        stats=stats,
        gx_result=raw,
    )
    log.info("validation of %s: %s", source, "passed" if report.success else "FAILED")
    return report
