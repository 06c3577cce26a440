"""SASRec's losses side by side through `negsamp sweep` (issue #19), with the best pair model.

For each dataset a throwaway copy of the project (its tracked files, a fresh git repository,
its own MLflow sqlite store) runs `negsamp sweep --no-record` over these configurations:

* SASRec with BCE at n_neg 1, 16, 256 (uniform negatives per position, never one of the
  user's items); gBCE (t = gbce_t) at n_neg 16 and 256; sampled softmax with the logQ
  correction at n_neg 256; full cross-entropy over the catalog;
* the best non-sequential configuration of the README's MovieLens-100k sweep by full
  NDCG@10: BPR with popularity negatives (alpha 0.5, 4 per positive).

Same leave-one-out split by time (validation item = second latest), same 99 sampled
candidates, same seed. The sweep's report (data/report/comparison.json) gives full NDCG@10
and Recall@10, sampled HR@10 with 95% bootstrap CIs, the paired test of ``registry.metric``
(here full NDCG@10) against the configuration chosen on validation, and training seconds;
this script prints them as a markdown table.

The budget is reduced for a shared CPU (stated in the output): SASRec hidden 32, 2 blocks,
max_len 50, batch 64 sequences, lr 0.003 (BCE with many negatives sits on a popularity
plateau for several epochs first; a higher rate shortens it), up to ``--epochs`` epochs with ``--patience`` on
validation full NDCG@10 (the monitor and ``registry.metric`` of the sweep).

    python bench/sequential.py [--quick] [--data ml100k,mlsmall] [--epochs 20]
                               [--data-dir ../shared/data] [--keep DIR]

--quick: MovieLens-100k only, two configurations, 1 epoch (a smoke test of the route).
--table DIR: the table of a project copy's configurations evaluated so far (a sweep stopped
before its report; the paired test is then against the best on validation among them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.integration.conftest import make_project  # noqa: E402 - the tests' project copy

# undo the integration tests' small settings that reach this comparison (the rest is unused)
FULL_SIZE = {
    "sampler": {"n_neg": 4, "pool_epochs": 5},
    "model": {"bpr": {"factors": 64}},
    "train": {"batch_size": 4096},
    "evaluate": {"n_eval_neg": 99},
}
DATA = {
    "ml100k": ("movielens-100k", "movielens-100k/u.data"),
    "mlsmall": ("movielens-csv", "ml-latest-small/ratings.csv"),
}
SAS = {"hidden": 32, "num_blocks": 2, "max_len": 50, "batch_size": 64, "dropout": 0.2, "lr": 0.003}


def sasrec(loss: str, n_neg: int = 1) -> dict[str, Any]:
    return {
        "model": {"name": "sasrec", "sasrec": {**SAS, "loss": loss}},
        "sampler": {"name": "uniform", "n_neg": n_neg},
    }


CONFIGS = {
    "sas-bce-1": sasrec("bce", 1),
    "sas-bce-16": sasrec("bce", 16),
    "sas-bce-256": sasrec("bce", 256),
    "sas-gbce-16": sasrec("gbce", 16),
    "sas-gbce-256": sasrec("gbce", 256),
    "sas-ssm-256-logq": sasrec("sampled_softmax", 256),
    "sas-full-ce": sasrec("full_softmax"),
    "bpr-pop0.5": {
        "model": {"name": "bpr"},
        "sampler": {"name": "popularity", "n_neg": 4, "popularity": {"alpha": 0.5}},
        "train": {"epochs": 50, "patience": 10},
    },
}


def run_sweep(root: Path, configs: dict[str, Any]) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)]),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "TQDM_DISABLE": "1",
    }
    cmd = [sys.executable, "-m", "negsamp", "sweep", "--no-record", "--concurrency", "1"]
    cmd += ["--set", f"sweep.configs={json.dumps(configs)}"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    (root / "sweep.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise SystemExit(
            f"sweep failed in {root} (see {root / 'sweep.log'}):\n{proc.stderr[-3000:]}"
        )
    return time.perf_counter() - t0


BASELINE = "bpr-pop0.5"


def _cell(row: dict[str, Any], name: str) -> str:
    v, ci = row["values"].get(name), row.get("ci", {}).get(name)
    if v is None:
        return "n/a"
    return f"{v:.4f} [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else f"{v:.4f}"


def _paired(d: dict[str, Any] | None) -> str:
    if d is None:
        return "-"
    return f"{d['diff']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] p={d['p_value']:.3g}"


def vs_baseline(root: Path, config: str, metric: str) -> dict[str, Any] | None:
    """Paired test of ``metric`` (config minus the BPR baseline) on the same test users, with
    the project's paired bootstrap and sign-flip test (1000 resamples, seed 42)."""
    import numpy as np
    import polars as pl

    from negsamp.metrics.bootstrap import paired_test

    if config == BASELINE:
        return None
    per = root / "data" / "metrics"
    a = pl.read_parquet(per / BASELINE / "per_user.parquet").select("user", a=metric)
    b = pl.read_parquet(per / config / "per_user.parquet").select("user", b=metric)
    j = a.join(b, on="user").drop_nulls()
    out = paired_test(
        j["a"].to_numpy()[:, None],
        j["b"].to_numpy()[:, None],
        1000,
        0.95,
        np.random.default_rng(42),
    )
    return {k: float(v[0]) for k, v in out.items()}


def table(report: dict[str, Any], root: Path) -> str:
    metric = report["metric"]
    head = (
        "| configuration | full NDCG@10 | full Recall@10 | sampled HR@10 | "
        f"{metric} vs chosen (p) | {metric} vs {BASELINE} (p) | train s | epochs |"
    )
    out = [head, "|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        name = r["config"]
        chosen = "chosen" if r.get("best") else _paired(r.get("vs_best"))
        base = (
            _paired(vs_baseline(root, name, metric))
            if (root / "data/metrics" / BASELINE).is_dir()
            else "n/a"
        )
        cells = [
            name,
            _cell(r, "full_ndcg_10"),
            _cell(r, "full_recall_10"),
            _cell(r, "sampled_hr_10"),
            chosen,
            base,
            f"{r['train_seconds']:.1f}",
            str(r.get("epochs")),
        ]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def partial_report(root: Path, metric: str = "full_ndcg_10") -> dict[str, Any]:
    """The report's rows from the configurations of ``root`` evaluated so far (for a sweep
    stopped before its report): values and CIs from each configuration's metrics, the choice
    on validation among them, its paired test against the others, train seconds from the
    training history."""
    import numpy as np
    import polars as pl

    from negsamp.metrics.bootstrap import paired_test

    rows = []
    for d in sorted((root / "data" / "metrics").iterdir()):
        if not (d / "metrics.json").is_file():
            continue
        hist = json.loads((root / "data" / "models" / d.name / "history.json").read_text())
        ci = json.loads((d / "ci.json").read_text())
        rows.append(
            {
                "config": d.name,
                "values": json.loads((d / "metrics.json").read_text()),
                "ci": {k: [v["ci_low"], v["ci_high"]] for k, v in ci.items()},
                "valid": max(r.get(f"valid_{metric}", -1.0) for r in hist),
                "train_seconds": sum(r["seconds"] for r in hist),
                "epochs": len(hist),
            }
        )
    rows.sort(key=lambda r: -r["valid"])
    best = pl.read_parquet(root / "data/metrics" / rows[0]["config"] / "per_user.parquet")
    for i, r in enumerate(rows):
        r["best"] = i == 0
        if i:
            other = pl.read_parquet(root / "data/metrics" / r["config"] / "per_user.parquet")
            j = best.select("user", a=metric).join(other.select("user", b=metric), on="user")
            t = paired_test(
                j["a"].to_numpy()[:, None], j["b"].to_numpy()[:, None], 1000, 0.95,
                np.random.default_rng(42),
            )  # fmt: skip
            r["vs_best"] = {k: float(v[0]) for k, v in t.items()}
    return {"metric": metric, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--data", default="ml100k,mlsmall")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--patience", type=int, default=8)
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--keep", default=None, help="keep the project copies under this folder")
    ap.add_argument("--configs", default=None, help="a comma-separated subset of CONFIGS")
    ap.add_argument("--table", default=None, help="only print the table of a project copy so far")
    args = ap.parse_args()
    if args.table:
        root = Path(args.table)
        print(table(partial_report(root), root))
        return
    data_dir = Path(args.data_dir)
    names = ["ml100k"] if args.quick else args.data.split(",")
    configs = {k: CONFIGS[k] for k in ("sas-bce-16", "sas-full-ce")} if args.quick else CONFIGS
    if args.configs:
        configs = {k: CONFIGS[k] for k in args.configs.split(",")}
    epochs = 1 if args.quick else args.epochs
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="negsamp-seq-"))
    print(
        f"budget: SASRec {SAS}, up to {epochs} epochs, patience {args.patience} on validation full "
        f"NDCG@10; BPR up to 50 epochs, patience 10; seed 42; 99 sampled candidates; "
        f"torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}"
    )
    for name in names:
        source, rel = DATA[name]
        path = data_dir / rel
        if not path.is_file():
            print(f"{name}: {path} not found, skipped")
            continue
        root = base / name
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        params = {
            **FULL_SIZE,
            "data": {"source": source, "path": str(path.resolve())},
            "train": {
                **FULL_SIZE["train"],
                "epochs": epochs,
                "patience": args.patience,
                "monitor": "full_ndcg_10",
            },
            # no refit on the whole log after the choice: the comparison needs the held-out models
            "registry": {"metric": "full_ndcg_10", "refit": False},
        }
        make_project(root, params)
        seconds = run_sweep(root, configs)
        report = json.loads((root / "data" / "report" / "comparison.json").read_text())
        print(f"\n### {name} ({source}): negsamp sweep of {len(configs)} in {seconds:.0f} s\n")
        print(table(report, root))
        print(f"\n(project copy: {root})")


if __name__ == "__main__":
    main()
