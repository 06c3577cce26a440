"""negsamp against tuned peers, on negsamp's own split and candidates (issue #18).

For each dataset (MovieLens-100k, ml-latest-small from ../shared/data) and seed: the
pipeline's ingest -> validate -> split -> candidates stages, then every method:
popularity; implicit's ALS, BPR and LMF; EASE (bench/peers.py); negsamp's models and
samplers through the pipeline's sample-negatives -> train -> evaluate stages.

Tuning: every method gets the same budget, the first ``--budget`` settings of its grid
(bench/peers.py, NEGSAMP below), scored on the first seed's validation item only, by
``train.monitor`` ranked as negsamp's trainer ranks it (same candidates, the user's test
item excluded); the test split is not read until the chosen settings are refit.

Information: the recency weights negsamp's models train with (`recency_boost`, a
property of the data's time order) are offered to every method that takes a weight per
interaction (ALS, LMF: confidence; EASE: weighted rows); the chosen settings are also
run without them ("no recency"). implicit BPR and popularity take no weight.

Test: sampled HR/NDCG@10 (the candidates stage's 99 negatives), full Recall/NDCG@10
(train and validation masked), each a mean over (seed, user) with a 95% bootstrap CI
over them; the paired test (bootstrap CI of the difference, sign-flip p) of each method
against the best of each NDCG column; fit seconds. negsamp's own numbers are re-scored
here and checked against its evaluate stage. Pairs whose sampled and full orders are
opposite are listed (negsamp.sweep.protocols).

    python bench/quality.py [--datasets ml-100k,ml-latest-small] [--seeds 0,1,2]
        [--budget 6] [--epochs 50] [--quick] [--out measured.md]
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # before tqdm is imported: bars would drown the table
# one BLAS thread (implicit's ALS warns that a BLAS thread pool slows it down); NEGSAMP_THREADS
# sets torch's threads, 1 by default: the machines this runs on are shared
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", os.environ.get("NEGSAMP_THREADS", "1"))

import argparse
import copy
import hashlib
import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from negsamp import config  # noqa: E402
from negsamp import evaluate as ev  # noqa: E402
from negsamp import train as trainer  # noqa: E402
from negsamp.interactions import Interactions  # noqa: E402
from negsamp.metrics.bootstrap import bootstrap_ci, paired_complete_cases  # noqa: E402
from negsamp.paths import Paths  # noqa: E402
from negsamp.stages import module  # noqa: E402
from negsamp.sweep.protocols import reversals, summary  # noqa: E402
from peers import PEERS, Scorer  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
DATASETS = {
    "ml-100k": ("movielens-100k", DATA / "movielens-100k" / "u.data"),
    "ml-latest-small": ("movielens-csv", DATA / "ml-latest-small" / "ratings.csv"),
}
METRICS = ("sampled_hr_10", "sampled_ndcg_10", "full_recall_10", "full_ndcg_10")
CPU = torch.device("cpu")

# negsamp's methods: name -> (configuration section, grid of overrides; the budget takes the
# first n). Each grid starts at the shipped defaults.
_BPR = [
    {},
    {"model": {"bpr": {"factors": 128}}},
    {"sampler": {"n_neg": 16}},
    {"model": {"bpr": {"factors": 128, "lr": 0.002}}, "sampler": {"n_neg": 16}},
    {"model": {"bpr": {"l2": 0.001}}},
    {"model": {"bpr": {"factors": 128, "l2": 0.01}}, "sampler": {"n_neg": 8}},
]
NEGSAMP: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {
    "negsamp iALS": ({"model": {"name": "ials"}}, [
        {},
        {"model": {"ials": {"factors": 128}}},
        {"model": {"ials": {"factors": 128, "reg": 10.0}}},
        {"model": {"ials": {"factors": 256, "reg": 100.0}}},
        {"model": {"ials": {"factors": 128, "alpha": 10.0}}},
        {"model": {"ials": {"factors": 128, "alpha": 1.0, "iterations": 30}}},
    ]),
    "negsamp BPR + uniform": ({"model": {"name": "bpr"}, "sampler": {"name": "uniform"}}, _BPR),
    "negsamp BPR + mixed": ({"model": {"name": "bpr"}, "sampler": {"name": "mixed"}}, _BPR),
    # popularity negatives with the logQ-corrected sampled softmax (train.logq_correction)
    "negsamp BPR + popularity": (
        {"model": {"name": "bpr"}, "sampler": {"name": "popularity", "popularity": {"alpha": 0.5}}},
        [
            {},
            {"model": {"bpr": {"loss": "sampled_softmax"}}, "sampler": {"n_neg": 16}},
            {"model": {"bpr": {"loss": "sampled_softmax", "factors": 128}}, "sampler": {"n_neg": 64}},
            {"sampler": {"n_neg": 16}},
            {"model": {"bpr": {"loss": "sampled_softmax", "lr": 0.002}}, "sampler": {"n_neg": 64}},
            {"model": {"bpr": {"factors": 128}}, "sampler": {"popularity": {"alpha": 0.75}}},
        ],
    ),
}  # fmt: skip


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@dataclass
class Prepared:
    """One (dataset, seed): negsamp's split, candidates and validation, as every method sees them."""

    name: str
    seed: int
    root: Path
    base: dict[str, Any]  # the params every run of this (dataset, seed) starts from
    train: Interactions
    recency: np.ndarray  # negsamp's recency weights of the training positives, CSR order
    cands: pl.DataFrame  # the candidates stage's test candidates
    test: pl.DataFrame
    mask: Interactions  # train + valid: masked in the full ranking of the test item
    validation: trainer.Validation

    def matrix(self, recency: bool) -> sp.csr_matrix:
        t = self.train
        v = t.counts.astype(np.float32) * (self.recency if recency else 1.0)
        return sp.csr_matrix((v, t.indices, t.indptr), shape=(t.n_users, t.n_items))


def prepare(dataset: str, seed: int, root: Path, monitor: str, epochs: int) -> Prepared:
    source, path = DATASETS[dataset]
    base = {
        "base": {"seed": seed, "device": os.environ.get("NEGSAMP_DEVICE", "cpu")},
        "data": {"source": source, "path": str(path.resolve())},
        "train": {"monitor": monitor, "epochs": epochs, "checkpoint": False},
    }
    cfg, paths = config.from_dict(base), Paths(root=root)
    for stage in ("ingest", "validate", "split", "candidates"):
        module(stage).run(cfg, paths)
    n_users = pl.read_parquet(paths.user_ids).height
    n_items = pl.read_parquet(paths.item_ids).height
    frame = pl.read_parquet(paths.train)
    train = Interactions.from_frame(frame, n_users, n_items)
    ials = cfg.model.ials  # the peers get the weights negsamp's iALS trains with
    recency = trainer.recency_weights(frame, ials.recency_boost, ials.recency_window)
    valid = pl.read_parquet(paths.valid, columns=["user", "item"])
    test = pl.read_parquet(paths.test, columns=["user", "item"])
    if test["user"].n_unique() != test.height:
        raise ValueError(f"{dataset}: one test item per user expected (leave-one-out)")
    mask = Interactions.from_frame(
        pl.concat([frame.select(valid.columns), valid]), n_users, n_items
    )
    e = cfg.evaluate
    validation = trainer.Validation.build(
        train, valid, monitor, e.n_eval_neg, seed, e.batch_size, test=test
    )
    return Prepared(
        dataset,
        seed,
        root,
        base,
        train,
        np.ones(train.nnz, np.float32) if recency is None else recency,
        pl.read_parquet(paths.eval_candidates),
        test,
        mask,
        validation,
    )


def per_user(p: Prepared, s: Any) -> pl.DataFrame:
    """Each test user's sampled HR/NDCG@10 and full Recall/NDCG@10 for scorer ``s``."""
    r = ev.sampled_ranks(s.score, p.cands, CPU, 1024)
    fr = ev.full_ranking(s.score_all, p.mask, p.test, 10, CPU, 1024)
    f = fr.position
    ndcg = lambda rank: np.where(rank < 10, 1.0 / np.log2(rank + 2.0), 0.0)  # noqa: E731
    sampled = pl.DataFrame(
        {"user": p.cands["user"].cast(pl.Int64), METRICS[0]: (r < 10) * 1.0, METRICS[1]: ndcg(r)}
    )
    full = pl.DataFrame(
        {"user": fr.row_user.astype(np.int64), METRICS[2]: (f < 10) * 1.0, METRICS[3]: ndcg(f)}
    )
    return sampled.join(full, on="user").sort("user")


def valid_value(p: Prepared, s: Any) -> float:
    return p.validation(s, CPU)[f"valid_{p.validation.monitor}"]


_EASE_CACHE: dict[tuple[str, float], tuple[Scorer, float]] = {}


def fit_peer(p: Prepared, name: str, setting: dict[str, Any], recency: bool) -> tuple[Any, float]:
    fn, _, _ = PEERS[name]
    x = p.matrix(recency)
    key = None
    if name == "EASE":  # deterministic: the same split and weights give the same B on every seed
        digest = hashlib.md5(x.data.tobytes() + x.indices.tobytes() + x.indptr.tobytes())
        key = (digest.hexdigest(), setting["lam"])
        if key in _EASE_CACHE:
            return _EASE_CACHE[key]
    t0 = time.perf_counter()
    s = fn(x, p.seed, **setting)
    out = (s, time.perf_counter() - t0)
    if key is not None:
        _EASE_CACHE[key] = out
    return out


def run_negsamp(p: Prepared, section: dict[str, Any], evaluate: bool) -> dict[str, Any]:
    """One configuration through the pipeline's stages; the evaluate stage's numbers are
    checked against this bench's own scoring of the saved model."""
    from negsamp.models import load_model

    cfg, paths = config.from_dict(merge(p.base, section)), Paths(root=p.root)
    if cfg.model.name != "ials" and cfg.sampler.name != "in_batch":
        module("sample-negatives").run(cfg, paths)
    t0 = time.perf_counter()
    module("train").run(cfg, paths)
    seconds = time.perf_counter() - t0
    history = json.loads(paths.train_history.read_text())
    key = f"valid_{cfg.train.monitor}"
    out: dict[str, Any] = {"valid": max(h[key] for h in history if key in h), "seconds": seconds}
    if evaluate:
        metrics = module("evaluate").run(cfg, paths)
        rows = per_user(p, load_model(paths.model_dir))
        for m in METRICS:
            if abs(rows[m].mean() - metrics[m]) > 1e-9:
                raise AssertionError(f"re-scored {m} {rows[m].mean()} != evaluate's {metrics[m]}")
        out["rows"] = rows
    return out


def tune(p: Prepared, budget: int, methods: set[str]) -> dict[str, tuple[dict[str, Any], float]]:
    """Method -> (chosen setting, its validation value), on ``p``'s validation only (a grid
    of one setting is not fitted here: there is nothing to choose)."""
    chosen: dict[str, tuple[dict[str, Any], float]] = {}
    for name, (_, _, grid) in PEERS.items():
        if name not in methods:
            continue
        if len(grid[:budget]) == 1:
            chosen[name] = (grid[0], float("nan"))
            continue
        tried = [
            (valid_value(p, fit_peer(p, name, g, True)[0]), i) for i, g in enumerate(grid[:budget])
        ]
        v, i = max(tried, key=lambda t: (t[0], -t[1]))
        chosen[name] = (grid[i], v)
        print(f"  tuned {name}: {grid[i]} valid {v:.4f} ({len(tried)} tried)", flush=True)
    for name, (section, grid) in NEGSAMP.items():
        if name not in methods:
            continue
        if len(grid[:budget]) == 1:
            chosen[name] = (merge(section, grid[0]), float("nan"))
            continue
        tried = [
            (run_negsamp(p, merge(section, g), False)["valid"], i)
            for i, g in enumerate(grid[:budget])
        ]
        v, i = max(tried, key=lambda t: (t[0], -t[1]))
        chosen[name] = (merge(section, grid[i]), v)
        print(f"  tuned {name}: {grid[i]} valid {v:.4f} ({len(tried)} tried)", flush=True)
    return chosen  # fmt: skip


def no_recency(section: dict[str, Any]) -> dict[str, Any]:
    m = section["model"]["name"]
    return merge(section, {"model": {m: {"recency_boost": 0.0}}})


def evaluate_all(p: Prepared, chosen: dict[str, tuple[dict[str, Any], float]]) -> dict[str, Any]:
    """Row label -> (per-user frame keyed by (seed, user), fit seconds) on ``p``'s test."""
    out: dict[str, tuple[pl.DataFrame, float]] = {}
    key = pl.col("user") + p.seed * 10_000_000
    for name, (setting, _) in chosen.items():
        variants = [("", True)]
        if name in NEGSAMP or PEERS[name][1]:
            variants.append((" (no recency)", False))
        for suffix, rec in variants:
            if name in NEGSAMP:
                r = run_negsamp(p, setting if rec else no_recency(setting), True)
                rows, seconds = r["rows"], r["seconds"]
            else:
                s, seconds = fit_peer(p, name, setting, rec)
                rows = per_user(p, s)
            out[name + suffix] = (rows.with_columns(user=key), seconds)
    return out


def ci(values: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return bootstrap_ci(values, 1000, 0.95, np.random.default_rng(seed))


def table(dataset: str, results: dict[str, list[tuple[pl.DataFrame, float]]], settings: dict[str, Any]) -> tuple[list[str], dict[str, pl.DataFrame]]:  # fmt: skip
    """The Markdown table of one dataset, and each row's per-(seed, user) frame."""
    frames = {n: pl.concat([f for f, _ in rs]) for n, rs in results.items()}
    means = {n: {m: float(f[m].mean()) for m in METRICS} for n, f in frames.items()}
    best = {m: max(means, key=lambda n, m=m: means[n][m]) for m in METRICS[1::2]}
    head = ["method", "chosen settings", *(f"{m} [95% CI]" for m in METRICS)]
    head += [f"{m} vs best" for m in METRICS[1::2]] + ["fit s"]
    lines = [f"### {dataset}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in sorted(frames, key=lambda n: -means[n]["full_ndcg_10"]):
        f = frames[n]
        vals = f.select(METRICS).to_numpy()
        lo, hi = ci(vals, 0)
        cells = [n, settings.get(n.replace(" (no recency)", ""), "")]
        cells += [f"{means[n][m]:.4f} [{lo[j]:.4f}, {hi[j]:.4f}]" for j, m in enumerate(METRICS)]
        for m in METRICS[1::2]:
            if n == best[m]:
                cells.append("best")
                continue
            t = paired(frames[best[m]], f, m)
            cells.append(
                f"{t['diff']:+.4f} [{t['ci_low']:+.4f}, {t['ci_high']:+.4f}] p={t['p_value']:.2g}"
            )
        cells.append(f"{np.mean([s for _, s in results[n]]):.1f}")
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return lines, frames  # fmt: skip


def paired(a: pl.DataFrame, b: pl.DataFrame, metric: str) -> dict[str, float]:
    """b minus a on the (seed, user) units both have: diff, ci_low, ci_high, p_value."""
    j = a.select("user", x=pl.col(metric)).join(b.select("user", y=pl.col(metric)), on="user")
    t = paired_complete_cases(
        j["x"].to_numpy()[:, None], j["y"].to_numpy()[:, None], 2000, 0.95,
        np.random.default_rng(1), [metric],
    )  # fmt: skip
    return {k: float(t[k][0]) for k in ("diff", "ci_low", "ci_high", "p_value")}


def verdict(frames: dict[str, pl.DataFrame]) -> list[str]:
    """Is negsamp's best row ahead of every peer row, with the paired CI above zero?"""
    out = []
    ours = [n for n in frames if n.startswith("negsamp")]
    theirs = [n for n in frames if not n.startswith("negsamp")]
    if not ours or not theirs:
        return ["- (no verdict: negsamp and peers were not both run)"]
    for m in METRICS[1::2]:
        top = max(ours, key=lambda n, m=m: frames[n][m].mean())
        tests = {n: paired(frames[n], frames[top], m) for n in theirs}
        behind = [n for n, t in tests.items() if not t["ci_low"] > 0]
        worst = min(tests, key=lambda n: tests[n]["diff"])
        t = tests[worst]
        head = f"- {m}: negsamp's best is `{top}`; "
        if not behind:
            out.append(head + f"ahead of every peer, the closest `{worst}` by {t['diff']:+.4f} "
                       f"[{t['ci_low']:+.4f}, {t['ci_high']:+.4f}]")  # fmt: skip
        else:
            out.append(head + f"NOT ahead (CI of the difference not above 0) of {', '.join(f'`{n}`' for n in behind)}; "
                       f"largest gap: `{worst}` {t['diff']:+.4f} [{t['ci_low']:+.4f}, {t['ci_high']:+.4f}]")  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budget", type=int, default=6, help="grid settings tried per method")
    ap.add_argument("--epochs", type=int, default=50, help="train.epochs (early stopping)")
    ap.add_argument("--monitor", default="sampled_ndcg_10", help="validation metric tuned on")
    ap.add_argument("--methods", help="comma-separated method names to run (default: all)")
    ap.add_argument(
        "--add",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help='another negsamp method: {"section": {...}, "grid": [{...}, ...]} in params layout',
    )
    ap.add_argument(
        "--chosen",
        type=Path,
        help="skip tuning: a JSON file of method -> setting (a grid entry) an earlier run chose",
    )
    ap.add_argument("--quick", action="store_true", help="ML-100k, one seed, budget 1, 3 epochs")
    ap.add_argument("--all-reversals", action="store_true", help="list every reversed pair")
    ap.add_argument("--out", type=Path, help="also write the tables (Markdown) here")
    a = ap.parse_args(argv)
    for spec in a.add:
        name, _, doc = spec.partition("=")
        d = json.loads(doc)
        NEGSAMP["negsamp " + name] = (d["section"], d.get("grid", [{}]))
    methods = set(a.methods.split(",")) if a.methods else {*PEERS, *NEGSAMP}
    if a.quick:
        a.datasets, a.seeds, a.budget, a.epochs = "ml-100k", "0", 1, 3
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(int(os.environ.get("NEGSAMP_THREADS", "1")))
    gate = config.from_dict({}).registry.metric
    doc: list[str] = []
    for dataset in a.datasets.split(","):
        if not DATASETS[dataset][1].is_file():
            print(f"{dataset}: {DATASETS[dataset][1]} not found, skipped")
            continue
        t_start = time.perf_counter()
        results: dict[str, list[tuple[pl.DataFrame, float]]] = {}
        settings: dict[str, Any] = {}
        with tempfile.TemporaryDirectory() as tmp:
            chosen = None
            for seed in (int(s) for s in a.seeds.split(",")):
                p = prepare(dataset, seed, Path(tmp) / f"seed{seed}", a.monitor, a.epochs)
                if chosen is None and a.chosen:  # tuned by an earlier run (its log says so)
                    picked = json.loads(a.chosen.read_text())
                    chosen = {
                        n: (merge(NEGSAMP[n][0], g) if n in NEGSAMP else g, float("nan"))
                        for n, g in picked.items()
                        if n in methods
                    }
                    settings = {
                        n: json.dumps(s, separators=(",", ":")) for n, (s, _) in chosen.items()
                    }
                if chosen is None:  # tuned on the first seed's validation, then reused
                    print(
                        f"{dataset}: tuning on seed {seed}'s validation ({a.monitor})", flush=True
                    )
                    chosen = tune(p, a.budget, methods)
                    settings = {
                        n: json.dumps(s, separators=(",", ":")) for n, (s, _) in chosen.items()
                    }
                for n, r in evaluate_all(p, chosen).items():
                    results.setdefault(n, []).append(r)
                print(f"{dataset}: seed {seed} done", flush=True)
        lines, frames = table(dataset, results, settings)
        lines += ["", f"{len(a.seeds.split(','))} seed(s) {a.seeds}, budget {a.budget} setting(s) "
                  f"per method tuned on `{a.monitor}` (validation), {a.epochs} epochs at most; "
                  f"{time.perf_counter() - t_start:.0f} s.", ""]  # fmt: skip
        lines += verdict(frames) + [""]
        found = reversals(frames, 10, 1000, 0.95, 0)
        shown = found if a.all_reversals else [r for r in found if r.supported()]
        lines += summary(shown, gate)
        if len(shown) < len(found):
            lines.append(f"({len(found) - len(shown)} more reversed pair(s) where not both paired "
                         "CIs exclude 0: --all-reversals lists them)")  # fmt: skip
        lines.append("")
        print("\n".join(lines), flush=True)
        doc += lines
    if a.out:
        a.out.write_text("\n".join(doc) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
