"""Full-ranking evaluation speed and memory against a per-user baseline in the same run.

Data: a synthetic set of 100k users x 20k items, ~10M training positives (Zipf(1) item
popularity, lognormal user activity), one held-out item per user drawn from the same
popularity, 99 sampled candidates per held-out item; a 64-factor model with random
factors and item biases (score = <p_u, q_i> + b_i), evaluated as the evaluate stage does.

Timed (wall clock, ``--threads`` CPU threads, pinned to as many cores where possible):
  full ranking   ``evaluate.full_ranking``: every user's scores against all 20k items in
                 batches of ``--batch`` users, masked, ranks by counting, top-100 by topk
  full metrics   Recall/Precision/NDCG/MAP@K, MRR, beyond-accuracy, segments and bootstrap
                 CIs over users (``metrics.report.build``, K = 1, 5, 10, 20, 50, 100);
                 it also turns the sampled ranks into HR/NDCG/MRR and corrected estimates
  sampled        ``evaluate.sampled_ranks`` over the 99 candidates (reported apart)
Baseline: a per-user loop (score one user, mask, full ``argsort``, find the held-out
item, take the top 100), timed on ``--baseline-users`` users and extrapolated; the ratio
is baseline time / batched full-ranking time. Its ranks are checked against the batched
ones on that subset. Peak memory: the process's peak RSS while it evaluates (VmHWM reset
once the data are built; the data, factors and libraries resident then count in it), and
apart the peak of building the synthetic data. Targets (issue #17): <= 15 s, <= 1 GiB.

    python bench/evaluate.py [--users 100000 --items 20000 --threads 2 --device cpu]
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--items", type=int, default=20_000)
    p.add_argument("--positives", type=int, default=10_000_000, help="training positives")
    p.add_argument("--factors", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="CPU threads (and cores pinned)")
    p.add_argument("--batch", type=int, default=1024, help="users scored per batch")
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    p.add_argument("--baseline-users", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


ARGS = _args()
os.environ.setdefault("TQDM_DISABLE", "1")  # the progress bar of full_ranking
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `import negsamp` sets it, before torch
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)  # before numpy / torch load their thread pools
if hasattr(os, "sched_setaffinity"):
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, cores[: ARGS.threads])

import resource  # noqa: E402

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import torch  # noqa: E402

from negsamp import evaluate as ev  # noqa: E402
from negsamp.config import EvaluateCfg  # noqa: E402
from negsamp.interactions import Interactions  # noqa: E402
from negsamp.metrics import report  # noqa: E402

KS = (1, 5, 10, 20, 50, 100)
N_EVAL_NEG = 99


def peak_rss_gib() -> float:
    """The process's peak RSS since start, or since :func:`reset_peak` where it worked."""
    try:
        with open("/proc/self/status") as f:
            hwm = next(line for line in f if line.startswith("VmHWM:"))
        return int(hwm.split()[1]) / 2**20  # kB
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def reset_peak() -> bool:
    """Reset the peak RSS to the current RSS (Linux /proc/self/clear_refs, "5")."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def synthetic(
    n_users: int, n_items: int, nnz: int, rng: np.random.Generator
) -> tuple[Interactions, np.ndarray]:
    """Training positives and one held-out item per user (never a training positive)."""
    pop = rng.permutation(1.0 / np.arange(1, n_items + 1))
    cdf = np.cumsum(pop / pop.sum())
    activity = rng.lognormal(0.0, 1.0, n_users)
    deg = np.maximum(1, np.round(activity / activity.sum() * nnz * 1.1)).astype(np.int64)
    users = np.repeat(np.arange(n_users), deg)
    items = np.minimum(np.searchsorted(cdf, rng.random(users.size)), n_items - 1)
    train = Interactions.from_arrays(users, items, n_users, n_items)
    held = np.full(n_users, -1, np.int64)
    todo = np.arange(n_users)
    while todo.size:  # held-out items from the same popularity, outside each user's history
        draw = np.minimum(np.searchsorted(cdf, rng.random(todo.size)), n_items - 1)
        ok = ~train.contains(todo, draw)
        held[todo[ok]] = draw[ok]
        todo = todo[~ok]
    return train, held


def candidates(train: Interactions, held: np.ndarray, rng: np.random.Generator) -> pl.DataFrame:
    """99 uniform candidates per user, none a positive or the held-out item (by rejection)."""
    n_users = held.size
    negs = rng.integers(0, train.n_items, size=(n_users, N_EVAL_NEG))
    bad = train.contains(np.arange(n_users)[:, None], negs) | (negs == held[:, None])
    while bad.any():  # duplicates within a row are left in: irrelevant to timing
        negs[bad] = rng.integers(0, train.n_items, size=int(bad.sum()))
        bad = train.contains(np.arange(n_users)[:, None], negs) | (negs == held[:, None])
    return pl.DataFrame(
        {
            "user": np.arange(n_users, dtype=np.int32),
            "item": held.astype(np.int32),
            "candidates": pl.Series(negs.astype(np.int32), dtype=pl.Array(pl.Int32, N_EVAL_NEG)),
        }
    )


def baseline(
    score_all, train: Interactions, users: np.ndarray, held: np.ndarray, device: str
) -> tuple[float, np.ndarray]:
    """The per-user loop with a full sort: (seconds, int64 rank of each held-out item)."""
    ranks = np.empty(users.size, np.int64)
    t0 = time.perf_counter()
    with torch.no_grad():
        for j, u in enumerate(users):
            s = score_all(torch.tensor([u], device=device))[0]
            seen = torch.as_tensor(
                train.indices[train.indptr[u] : train.indptr[u + 1]], device=device
            )
            s[seen.long()] = float("-inf")
            order = torch.argsort(s, descending=True)
            ranks[j] = int((order == int(held[u])).nonzero()[0, 0])
            _ = order[: max(KS)].cpu().numpy()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0, ranks


def main() -> None:
    a = ARGS
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    print(
        f"negsamp evaluate bench: {a.users:,} users x {a.items:,} items, {a.factors} factors, "
        f"{a.threads} CPU threads (cores {sorted(os.sched_getaffinity(0))}), device {a.device}, "
        f"torch {torch.__version__}"
    )
    t0 = time.perf_counter()
    train, held = synthetic(a.users, a.items, a.positives, rng)
    cands = candidates(train, held, rng)
    test = cands.select("user", "item")
    g = torch.Generator().manual_seed(a.seed)
    user_f = (torch.randn(a.users, a.factors, generator=g) * 0.1).to(a.device)
    item_f = (torch.randn(a.items, a.factors, generator=g) * 0.1).to(a.device)
    bias = (torch.randn(a.items, generator=g) * 0.1).to(a.device)

    def score_all(u: torch.Tensor) -> torch.Tensor:
        return torch.addmm(bias, user_f[u], item_f.T)

    def score(u: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bd,bmd->bm", user_f[u], item_f[items]) + bias[items]

    print(
        f"data: {train.nnz:,} training positives, {test.height:,} held-out items "
        f"({time.perf_counter() - t0:.1f} s); peak RSS so far {peak_rss_gib():.2f} GiB"
    )
    cfg = EvaluateCfg(ks=KS)
    data_peak = peak_rss_gib()
    reset = reset_peak()  # from here the peak is the evaluation's (data already resident)
    rss_before = peak_rss_gib()

    def sync() -> None:
        if a.device.startswith("cuda"):
            torch.cuda.synchronize()

    t = time.perf_counter()
    fr = ev.full_ranking(score_all, train, test, max(KS), a.device, a.batch)
    sync()
    t_full = time.perf_counter() - t
    peak_ranking = peak_rss_gib()  # the batched ranking alone: bounded by its batch
    t = time.perf_counter()
    sr = ev.sampled_ranks(score, cands, a.device, 4 * a.batch)
    sync()
    t_sampled = time.perf_counter() - t
    t = time.perf_counter()
    res = report.build(cands, sr, fr, train, cfg, a.seed)
    t_report = time.perf_counter() - t
    total = t_full + t_report
    peak = peak_rss_gib()

    sub = np.sort(rng.choice(a.users, size=min(a.baseline_users, a.users), replace=False))
    t_base, base_ranks = baseline(score_all, train, sub, held, a.device)
    t_base_all = t_base / sub.size * a.users
    agree = np.array_equal(base_ranks, fr.position[sub])

    print(f"full ranking (ranks + top-{max(KS)}):   {t_full:8.2f} s")
    print(f"metrics, CIs, segments, corrections:    {t_report:8.2f} s")
    print(f"sampled protocol ranks (99 candidates): {t_sampled:8.2f} s   (not in the total)")
    print(
        f"baseline per-user loop + argsort:       {t_base_all:8.2f} s   "
        f"({t_base:.2f} s on {sub.size:,} users, extrapolated; ranks agree: {agree})"
    )
    what = "evaluation" if reset else "whole run (peak reset unsupported)"
    print(f"peak RSS of data preparation:           {data_peak:8.2f} GiB (not the evaluation's)")
    print(
        f"issue #17 row, full-ranking evaluation {a.users:,} users x {a.items:,} items, "
        f"{a.factors} factors ({a.threads} threads, machine shared, niced):\n"
        f"  time  {total:6.2f} s = {total / t_base_all:.3f} x the per-user baseline "
        f"({t_base_all / total:.1f}x faster); target <= 15 s\n"
        f"  peak  {peak:6.2f} GiB RSS during the {what} ({rss_before:.2f} GiB resident before "
        f"it: data, factors, libraries); target <= 1 GiB\n"
        f"        {peak_ranking:6.2f} GiB of it by the end of the batched full ranking (batch "
        f"{a.batch} users: about {a.batch * a.items * 4 / 2**20:.0f} MiB of scores); the rest is "
        "the metrics report (bootstrap CIs, segments, per-user tables)"
    )
    m = res.metrics
    print(
        f"sanity: full_recall_10 {m['full_recall_10']:.4f}  sampled_hr_10 {m['sampled_hr_10']:.4f}  "
        f"bv_recall_10 {m['bv_recall_10']:.4f}  coverage_10 {m['coverage_10']:.4f}"
    )
    if total > 15 or peak > 1:
        sys.exit(1)


if __name__ == "__main__":
    main()
