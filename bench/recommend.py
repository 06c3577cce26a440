"""Batch recommendation throughput (the recommend stage's core) beside full-ranking evaluation.

Data: the embedded synthetic generator (``negsamp.data.synthetic``), ingested as the ingest
stage does (``to_implicit`` with no threshold, then ``encode``), at two shapes:
  default   params.yaml's ``data.synthetic`` (5,000 users x 2,000 items, 200k events)
  100k      100,000 users x 20,000 items, ``--events`` events (5M by default)
and a 64-factor BPR model with random factors and item biases (what is timed is the
scoring, masking and top-K, not the quality).

Timed (wall clock, ``--threads`` CPU threads, pinned to as many cores where possible):
  full ranking  ``evaluate.full_ranking`` as the evaluate stage runs it: every user's last
                interaction held out, the rest masked, ``evaluate.batch_size`` (1024) users
                at once, ranks by counting and the top 100 (max of ``evaluate.ks``) by topk.
                The baseline: what the recommender's speed is compared with in this run.
  recommend     ``recommend.top_k``: every user's top ``recommend.k`` (10) items with the
                whole log masked, at 1024 users a batch (the same as full ranking) and at
                ``recommend.batch_size`` (4096); then ``recommend.to_frame`` (original ids).
Printed: users per second of each, and the ratio recommend / full ranking. No timed
assertion anywhere: the numbers are for people.

    python bench/recommend.py [--threads 2 --device cpu --events 5000000 --repeat 2]
"""

from __future__ import annotations

import argparse
import os
import time


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2, help="CPU threads (and cores pinned)")
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--events", type=int, default=5_000_000, help="events of the 100k shape")
    p.add_argument("--factors", type=int, default=64)
    p.add_argument("--repeat", type=int, default=2, help="best of this many timings")
    p.add_argument("--shapes", default="default,100k", help="comma-separated: default, 100k")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


ARGS = _args()
os.environ.setdefault("TQDM_DISABLE", "1")  # the progress bars of full_ranking / top_k
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)  # before numpy / torch load their thread pools
if hasattr(os, "sched_setaffinity"):
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, cores[: ARGS.threads])

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import torch  # noqa: E402

from negsamp import evaluate as ev  # noqa: E402
from negsamp.config import BPRCfg, EvaluateCfg  # noqa: E402
from negsamp.config.data import SyntheticCfg  # noqa: E402
from negsamp.config.run import RecommendCfg  # noqa: E402
from negsamp.data.encode import encode, to_implicit  # noqa: E402
from negsamp.data.synthetic import generate  # noqa: E402
from negsamp.interactions import Interactions  # noqa: E402
from negsamp.models import build_model  # noqa: E402
from negsamp.recommend import to_frame, top_k  # noqa: E402

SHAPES = {
    "default": SyntheticCfg(),
    "100k": SyntheticCfg(n_users=100_000, n_items=20_000, n_interactions=ARGS.events),
}


def _sync() -> None:
    if ARGS.device.startswith("cuda"):
        torch.cuda.synchronize()


def best_of(fn, n: int) -> tuple[float, object]:  # noqa: ANN001
    """(fastest wall seconds of ``n`` calls, the last result)."""
    best, out = float("inf"), None
    for _ in range(n):
        _sync()
        t0 = time.perf_counter()
        out = fn()
        _sync()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bench(name: str, syn: SyntheticCfg) -> None:
    t0 = time.perf_counter()
    log_, user_ids, item_ids = encode(to_implicit(generate(syn, ARGS.seed), None))
    n_users, n_items = user_ids.height, item_ids.height
    seen = Interactions.from_frame(log_, n_users, n_items)
    # held out for full ranking: each user's last interaction; the rest is masked
    last = log_.group_by("user").agg(pl.all().sort_by("timestamp").last()).sort("user")
    rest = log_.join(last.select("user", "item"), on=["user", "item"], how="anti")
    mask = Interactions.from_frame(rest, n_users, n_items)
    print(
        f"\n[{name}] {n_users:,} users x {n_items:,} items, {seen.nnz:,} positives "
        f"(built in {time.perf_counter() - t0:.1f} s), device {ARGS.device}, "
        f"{ARGS.threads} thread(s)"
    )
    gen = torch.Generator().manual_seed(ARGS.seed)
    model = build_model(BPRCfg(factors=ARGS.factors), n_users, n_items, gen).to(ARGS.device)
    with torch.no_grad():
        for w in (model.user.weight, model.item.weight):
            w.copy_(torch.randn(w.shape, generator=gen).to(w.device) * 0.1)
    model.eval()
    users = np.arange(n_users, dtype=np.int64)
    ecfg, rcfg = EvaluateCfg(), RecommendCfg()
    test = last.select("user", "item")

    def full() -> object:
        return ev.full_ranking(
            model.score_all, mask, test, max(ecfg.ks), ARGS.device, ecfg.batch_size
        )

    base_s, _ = best_of(full, ARGS.repeat)
    base = n_users / base_s
    print(
        f"  full ranking  (batch {ecfg.batch_size:>4}, top {max(ecfg.ks)}): {base:>10,.0f} users/s"
    )
    top = None
    for batch in sorted({ecfg.batch_size, rcfg.batch_size}):
        s, top = best_of(
            lambda b=batch: top_k(model.score_all, seen, users, rcfg.k, ARGS.device, b),
            ARGS.repeat,
        )
        rate = n_users / s
        print(
            f"  recommend     (batch {batch:>4}, top {rcfg.k:>3}): {rate:>10,.0f} users/s"
            f"   x{rate / base:.2f} full ranking"
        )
    raw_u, raw_i = user_ids["original"], item_ids["original"]
    s, frame = best_of(lambda: to_frame(top, raw_u, raw_i), ARGS.repeat)
    print(f"  to_frame (original ids, {frame.height:,} rows): {n_users / s:>10,.0f} users/s")
    short = top.n_short
    assert frame.height == int((top.items >= 0).sum())
    hit = seen.contains(
        np.repeat(users, rcfg.k)[top.items.ravel() >= 0],
        top.items.ravel()[top.items.ravel() >= 0].astype(np.int64),
    )
    print(
        f"  checks: {short} user(s) short of {rcfg.k} unseen items; seen items returned: {hit.sum()}"
    )


def main() -> None:
    torch.set_num_threads(ARGS.threads)
    for name in ARGS.shapes.split(","):
        bench(name, SHAPES[name])


if __name__ == "__main__":
    main()
