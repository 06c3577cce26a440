"""What a finished flow run says in Prefect's Artifacts tab (issue #15): pure text.

:func:`markdown` turns the pipeline's result (each configuration's metrics, the comparison,
the registration, the recommendations' manifest) into a short Markdown report: the gate's
decision, the links to the MLflow run and model version, and the comparison table with its
CIs. :func:`table` is the same comparison as rows for a table artifact.
"""

from __future__ import annotations

import math
from typing import Any


def _num(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def table(comparison: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per configuration: rank, configuration, sampler, model, n_neg, the validation
    value it was chosen on, then each headline test metric with its CI bounds."""
    rows = []
    for r in comparison["rows"]:
        row = {
            "rank": r.get("rank"),
            "configuration": r["config"],
            "sampler": r.get("sampler"),
            "model": r.get("model"),
            "n_neg": r.get("n_neg"),
            f"valid {comparison['monitor']}": r.get("valid"),
        }
        for c in comparison["columns"]:
            lo, hi = (r.get("ci") or {}).get(c, (None, None))
            row |= {c: r["values"].get(c), f"{c} ci_low": lo, f"{c} ci_high": hi}
        row |= {"epochs": r.get("epochs"), "train s": r.get("train_seconds")}
        rows.append({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                     for k, v in row.items()})  # fmt: skip
    return rows


def markdown(result: dict[str, Any], links: dict[str, Any], title: str) -> str:
    """The run's report: decision, links, comparison, batch recommendations."""
    reg, comp = result["registration"], result["comparison"]
    verdict = (
        "promoted to **champion**"
        if reg.get("promoted")
        else ("identical to the champion: not registered again" if not reg.get("registered", True)
              else f"kept as **{reg.get('alias')}**")
    )  # fmt: skip
    lines = [
        f"# {title}",
        "",
        f"**{reg['model_name']} v{reg['version']}** ({reg.get('config')}): {verdict}.",
        "",
        f"Gate: {reg.get('reason')}",
        "",
        f"- {reg['metric']}: {_num(reg.get('value'))} (champion before: "
        f"{_num(reg.get('champion_value_before'))}"
        + (f", v{reg['champion_version_before']})" if reg.get("champion_version_before") else ")"),
    ]
    if links.get("run"):
        lines.append(f"- MLflow run: [{reg['run_id']}]({links['run']})")
    if links.get("model_version"):
        lines.append(
            f"- Model version: [{reg['model_name']} v{reg['version']}]({links['model_version']})"
        )
    if links.get("open"):
        lines.append(f"- Open the MLflow UI with `{links['open']}` (then the links above work)")
    rec = result.get("recommendations")
    if rec:
        lines.append(
            f"- Batch recommendations: {rec['users']} users x top-{rec['k']} from "
            f"`{rec.get('model_dir')}`, catalog coverage {_num(rec.get('catalog_coverage'), 3)}, "
            f"long-tail share {_num(rec.get('longtail_share'), 3)}"
        )
    cols = comp["columns"]
    lines += [
        "",
        f"## Configurations ({len(comp['rows'])}): chosen on validation {comp['monitor']}",
        "",
        "| # | configuration | sampler | model | n_neg | valid | " + " | ".join(cols) + " |",
        "|---:|---|---|---|---:|---:|" + "---|" * len(cols),
    ]
    for r in comp["rows"]:
        cells = []
        for c in cols:
            lo, hi = (r.get("ci") or {}).get(c, (None, None))
            ci = f" [{_num(lo)}, {_num(hi)}]" if lo is not None else ""
            cells.append(_num(r["values"].get(c)) + ci)
        lines.append(
            f"| {r.get('rank')} | {r['config']}{' (chosen)' if r.get('best') else ''} | "
            f"{r.get('sampler')} | {r.get('model')} | {r.get('n_neg')} | {_num(r.get('valid'))} | "
            + " | ".join(cells)
            + " |"
        )
    lines += ["", f"Test metrics with {comp.get('level', 0.95):.0%} bootstrap CIs over test users."]
    return "\n".join(lines) + "\n"


def drift_markdown(out: dict[str, Any]) -> str:
    """The drift check's result (``{retrained, reason, drift, registration}``) as Markdown:
    the summary, the decision, the gate when it retrained, and every signal's value."""
    drift = out["drift"]
    decision = f"retrained ({out['reason']})." if out["retrained"] else "no retrain."
    lines = ["# Drift check", "", f"**{drift['summary']}**: {decision}"]
    reg = out.get("registration")
    if reg:
        lines += [
            "",
            f"Gate: {reg['model_name']} v{reg['version']} is {reg['alias']}: {reg['reason']}",
        ]
    values = drift.get("values") or {}
    if values:
        fired = set(drift["fired"])
        lines += ["", "| signal | value | fired |", "|---|---:|---|"]
        lines += [
            f"| {k} | {v:.4g} | {'yes' if k in fired else ''} |" for k, v in sorted(values.items())
        ]
    if drift.get("report"):
        lines += ["", f"Full report: `{drift['report']}`"]
    return "\n".join(lines) + "\n"
