"""negsamp from a notebook: a DataFrame of events in, recommendations in original ids out.

Run it with `python examples/quickstart.py` (about 10 s on a laptop CPU). The events are a
small synthetic log with string user ids and integer item ids; swap in your own frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

import negsamp


def events(n_users: int = 300, n_items: int = 400, n: int = 8000, seed: int = 0) -> pd.DataFrame:
    """A long-tailed event log: user (str), movie_id (int), ts (unix seconds)."""
    rng = np.random.default_rng(seed)
    taste = rng.integers(0, 4, n_users)  # each user prefers one quarter of the catalog
    users = rng.integers(0, n_users, n)
    liked = rng.random(n) < 0.7
    block = n_items // 4
    items = np.where(
        liked,
        taste[users] * block + rng.zipf(1.3, n) % block,
        rng.zipf(1.2, n) % n_items,
    )
    return pd.DataFrame(
        {
            "user": [f"user-{u}" for u in users],
            "movie_id": 10_000 + items,
            "ts": rng.integers(1_600_000_000, 1_700_000_000, n),
        }
    )


def main() -> dict[str, float]:
    df = events()
    data = negsamp.Interactions.from_frame(df, user="user", item="movie_id", timestamp="ts")
    print(f"{data.n_users} users, {data.n_items} items, {len(data)} positives")

    # four popularity-weighted negatives per positive, never one of the user's own items
    negs = negsamp.sample_negatives(data, sampler="popularity", alpha=0.75, n_neg=4, seed=0)
    print(negs.head(3))

    # leave-one-out: each user's latest item is the test item, the one before it validation
    parts = negsamp.split(data)
    model = negsamp.fit(
        parts, model="bpr", sampler="popularity", epochs=15, factors=32, lr=0.01, seed=0
    )
    best = max(row["valid_sampled_ndcg_10"] for row in model.history)
    print(f"trained {len(model.history)} epochs, best validation NDCG@10 {best:.3f}")

    metrics = negsamp.evaluate(model, parts)  # the evaluate stage's metrics.json keys
    for name in ("sampled_hr_10", "sampled_ndcg_10", "full_recall_10", "coverage_10"):
        print(f"{name:>16}: {metrics[name]:.4f}")

    print(model.recommend(["user-1", "user-2"], k=5))
    return metrics


if __name__ == "__main__":
    main()
