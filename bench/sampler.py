"""Sampler throughput: the vectorized exact samplers against a per-user Python loop baseline.

Prints negatives/second of each and the speed-up ratio, measured in the same run on the
same synthetic positives (default: the pipeline's default synthetic size).

    python bench/sampler.py [--users 5000] [--items 2000] [--interactions 200000] [--n-neg 4]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from negsamp.config import SyntheticCfg
from negsamp.data.encode import encode, to_implicit
from negsamp.data.synthetic import generate
from negsamp.interactions import Interactions
from negsamp.samplers.exact import uniform_excluding, weighted_excluding
from negsamp.samplers.popularity import popularity_weights


def baseline_loop(
    pos: Interactions, users: np.ndarray, n_neg: int, rng: np.random.Generator
) -> np.ndarray:
    """The textbook loop: per positive, draw until the item is not one of the user's positives."""
    out = np.empty((users.size, n_neg), np.int32)
    sets: dict[int, set[int]] = {}
    for row, u in enumerate(users.tolist()):
        seen = sets.get(u)
        if seen is None:
            seen = sets[u] = set(pos.indices[pos.indptr[u] : pos.indptr[u + 1]].tolist())
        for j in range(n_neg):
            while True:
                i = int(rng.integers(pos.n_items))
                if i not in seen:
                    out[row, j] = i
                    break
    return out


def timed(fn, *args) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--interactions", type=int, default=200_000)
    ap.add_argument("--n-neg", type=int, default=4)
    ap.add_argument("--baseline-rows", type=int, default=50_000, help="rows the slow loop samples")
    a = ap.parse_args()

    raw = generate(
        SyntheticCfg(n_users=a.users, n_items=a.items, n_interactions=a.interactions), seed=0
    )
    inter, _, _ = encode(to_implicit(raw, None))
    pos = Interactions.from_frame(inter, int(inter["user"].max()) + 1, int(inter["item"].max()) + 1)
    users = pos.rows()
    print(
        f"positives: {pos.nnz:,} ({pos.n_users:,} users x {pos.n_items:,} items), n_neg={a.n_neg}"
    )

    sub = users[: a.baseline_rows]
    t_base, _ = timed(baseline_loop, pos, sub, a.n_neg, np.random.default_rng(0))
    base_rate = sub.size * a.n_neg / t_base
    print(f"{'baseline python loop':<28} {base_rate:>14,.0f} neg/s")

    w = popularity_weights(pos, 0.75)
    for name, fn in (
        (
            "uniform (exact, vectorized)",
            lambda: uniform_excluding(pos, users, a.n_neg, np.random.default_rng(0)),
        ),
        (
            "popularity a=0.75",
            lambda: weighted_excluding(pos, users, a.n_neg, w, np.random.default_rng(0)),
        ),
    ):
        t, negs = timed(fn)
        assert not pos.contains(users[:, None], negs).any()
        rate = users.size * a.n_neg / t
        print(f"{name:<28} {rate:>14,.0f} neg/s   x{rate / base_rate:,.1f} vs baseline")


if __name__ == "__main__":
    main()
