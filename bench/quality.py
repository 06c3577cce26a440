"""Model quality on MovieLens-100k through the pipeline's own stages, against `implicit`.

For each seed: ingest -> validate -> split -> candidates once, then for every (model,
sampler) configuration sample-negatives -> train -> evaluate, each with the model's tuned
defaults (the configuration is set as the base params, not as a sweep override, so the
model's own defaults apply). In the same run, on the same split and candidates: the
popularity baseline and implicit's AlternatingLeastSquares and BayesianPersonalizedRanking.
Prints the mean over seeds of sampled HR@10 / NDCG@10, full Recall@10 / NDCG@10 and the
training seconds.

    python bench/quality.py [--seeds 0,1,2] [--models bpr,lmf,gmf,mlp,neumf,ials]
        [--samplers uniform,popularity] [--extra '{"model": {...}, "sampler": {...}}']
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # before tqdm is imported: bars would drown the table

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from negsamp import config
from negsamp import evaluate as ev
from negsamp.interactions import Interactions
from negsamp.paths import Paths
from negsamp.stages import module

ML100K = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "movielens-100k" / "u.data"
)
COLUMNS = ("sampled_hr_10", "sampled_ndcg_10", "full_recall_10", "full_ndcg_10", "train_s")


def params(seed: int, section: dict[str, Any] | None = None) -> config.Config:
    raw: dict[str, Any] = {
        "base": {"seed": seed, "device": os.environ.get("NEGSAMP_DEVICE", "cpu")},
        "data": {"source": "movielens-100k", "path": str(ML100K.resolve())},
    }
    raw.update(section or {})
    return config.from_dict(raw)


def prepare(root: Path, seed: int) -> None:
    for stage in ("ingest", "validate", "split", "candidates"):
        module(stage).run(params(seed), Paths(root=root))


def run(root: Path, seed: int, section: dict[str, Any]) -> dict[str, float]:
    cfg, paths = params(seed, section), Paths(root=root)
    if cfg.model.name != "ials" and cfg.sampler.name != "in_batch":
        module("sample-negatives").run(cfg, paths)
    t0 = time.perf_counter()
    module("train").run(cfg, paths)
    seconds = time.perf_counter() - t0
    metrics = module("evaluate").run(cfg, paths)
    return {**{k: metrics[k] for k in COLUMNS[:4]}, "train_s": seconds}


def _metrics(root: Path, score, score_all) -> dict[str, float]:  # noqa: ANN001
    """The evaluate stage's headline numbers for a scorer outside the pipeline."""
    d = root / "data"
    cands = pl.read_parquet(d / "pools/eval_candidates.parquet")
    test = pl.read_parquet(d / "split/test.parquet", columns=["user", "item"])
    n_users = pl.read_parquet(d / "interim/user_ids.parquet").height
    n_items = pl.read_parquet(d / "interim/item_ids.parquet").height
    seen = pl.concat([pl.read_parquet(d / f"split/{f}.parquet") for f in ("train", "valid")])
    mask = Interactions.from_frame(seen, n_users, n_items)
    cpu = torch.device("cpu")
    r = ev.sampled_ranks(score, cands, cpu, 1024)
    f = ev.full_ranking(score_all, mask, test, 10, cpu, 1024).position
    hit, fhit = r < 10, f < 10
    return {
        "sampled_hr_10": float(hit.mean()),
        "sampled_ndcg_10": float(np.where(hit, 1 / np.log2(r + 2.0), 0).mean()),
        "full_recall_10": float(fhit.mean()),
        "full_ndcg_10": float(np.where(fhit, 1 / np.log2(f + 2.0), 0).mean()),
    }


def baselines(root: Path, seed: int) -> dict[str, dict[str, float]]:
    """Popularity and implicit's ALS / BPR (light tuning) on the same split and candidates."""
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    from threadpoolctl import threadpool_limits

    d = root / "data"
    train = pl.read_parquet(d / "split/train.parquet")
    n_users = pl.read_parquet(d / "interim/user_ids.parquet").height
    n_items = pl.read_parquet(d / "interim/item_ids.parquet").height
    t = Interactions.from_frame(train, n_users, n_items)
    m = sp.csr_matrix((t.counts, t.indices, t.indptr), shape=(n_users, n_items))
    pop = torch.as_tensor(t.item_counts(), dtype=torch.float32)
    out = {
        "popularity": _metrics(root, lambda u, i: pop[i], lambda u: pop.expand(len(u), -1).clone())
    }
    models = {
        "implicit ALS": AlternatingLeastSquares(factors=64, regularization=50.0, alpha=20.0, random_state=seed),
        "implicit BPR": BayesianPersonalizedRanking(factors=64, learning_rate=0.01, regularization=0.001, iterations=100, random_state=seed),
    }  # fmt: skip
    for name, model in models.items():
        t0 = time.perf_counter()
        with threadpool_limits(1, "blas"):
            model.fit(m, show_progress=False)
        seconds = time.perf_counter() - t0
        uf, itf = torch.as_tensor(model.user_factors), torch.as_tensor(model.item_factors)
        out[name] = _metrics(
            root,
            lambda u, i, uf=uf, itf=itf: torch.bmm(itf[i], uf[u].unsqueeze(2)).squeeze(2),
            lambda u, uf=uf, itf=itf: uf[u] @ itf.T,
        ) | {"train_s": seconds}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--models", default="bpr,lmf,gmf,mlp,neumf,ials")
    ap.add_argument("--samplers", default="uniform,popularity")
    ap.add_argument("--extra", action="append", default=[], help="a JSON params section")
    ap.add_argument("--no-baselines", action="store_true")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    configs: dict[str, dict[str, Any]] = {}
    for m in a.models.split(","):
        for s in ["-"] if m == "ials" else a.samplers.split(","):
            configs[f"{m} / {s}"] = {"model": {"name": m}} | (
                {} if m == "ials" else {"sampler": {"name": s}}
            )
    for e in a.extra:
        configs[e] = json.loads(e)
    rows: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (int(s) for s in a.seeds.split(",")):
            root = Path(tmp) / f"seed{seed}"
            prepare(root, seed)
            if not a.no_baselines:
                for name, r in baselines(root, seed).items():
                    rows.setdefault(name, []).append(r)
            for name, section in configs.items():
                rows.setdefault(name, []).append(run(root, seed, section))
                print(f"seed {seed} {name}: {rows[name][-1]}", flush=True)
    print(f"\n{'configuration':<44}" + "".join(f"{c:>17}" for c in COLUMNS))
    for name, rs in rows.items():
        means = [np.mean([r.get(c, np.nan) for r in rs]) for c in COLUMNS]
        print(f"{name:<44}" + "".join(f"{v:>17.4f}" for v in means))


if __name__ == "__main__":
    main()
