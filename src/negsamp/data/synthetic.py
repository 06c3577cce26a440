"""A synthetic implicit-feedback log with the structure real logs have.

Why synthetic: the pipeline, the samplers and the drift checks need data whose
properties we control (and that exists without a download). The generator mimics
what makes negative sampling matter on real data:

- Zipf-like long-tailed item popularity (``zipf_exponent``), so popularity-based
  negatives differ from uniform ones;
- users with a few latent tastes: ``n_tastes`` item clusters, ``tastes_per_user`` per
  user; an event picks from one of the user's tastes (popularity-weighted inside the
  cluster) with probability ``taste_strength``, otherwise from global popularity;
- lognormal user activity (``activity_sigma``) spanning orders of magnitude, with
  at least :data:`MIN_EVENTS_PER_USER` events per user;
- timestamps over ``days`` from ``start``, each user active in a random window;
- drift (``drift`` in [0, 1]): log-popularity moves linearly in time from a start
  ranking towards an independent end ranking (fully there at t=1 when drift=1), and
  the last ``new_item_share`` of item ids (new items get higher ids, as in MovieLens)
  only exist from the midpoint on.

Everything is vectorized numpy; the only Python loop is over (time chunk, taste
cluster) segments, at most 24 * (n_tastes + 1) iterations.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl

from negsamp.config import SyntheticCfg
from negsamp.rng import Stream, numpy_rng

MIN_EVENTS_PER_USER = 5
N_TIME_CHUNKS = 24  # even, so the midpoint is a chunk boundary
SECONDS_PER_DAY = 86_400
SCHEMA = {"user": pl.Int64, "item": pl.Int64, "rating": pl.Float32, "timestamp": pl.Int64}


def generate(cfg: SyntheticCfg, seed: int) -> pl.DataFrame:
    """Generate ``cfg.n_interactions`` events, the same bytes for the same (cfg, seed).

    Returns a frame of exactly ``n_interactions`` rows sorted by (timestamp, user, item):
    ``user`` Int64 (raw ids 1..n_users, every user present), ``item`` Int64 (raw ids
    1..n_items, rare items may be absent), ``rating`` Float32 (stars 1..5, higher when
    the event matched one of the user's tastes), ``timestamp`` Int64 (unix seconds).
    Repeated (user, item) events occur; ingest aggregates them.
    """
    n_users, n = cfg.n_users, cfg.n_interactions
    if n < MIN_EVENTS_PER_USER * n_users:
        raise ValueError(
            f"data.synthetic.n_interactions={n} is too small for n_users={n_users}: every "
            f"user gets at least {MIN_EVENTS_PER_USER} events, so raise n_interactions to "
            f">= {MIN_EVENTS_PER_USER * n_users} or lower n_users"
        )
    # independent streams: changing the number of events keeps the item/user structure
    items_rng = numpy_rng(seed, Stream.SYNTHETIC_ITEMS)
    users_rng = numpy_rng(seed, Stream.SYNTHETIC_USERS)
    events_rng = numpy_rng(seed, Stream.SYNTHETIC_EVENTS)

    logz_start, logz_end, is_new, cluster = _items(cfg, items_rng)
    tastes, counts, window_lo, window_hi = _users(cfg, users_rng)

    user = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    t = window_lo[user] + (window_hi - window_lo)[user] * events_rng.random(n)
    from_taste = events_rng.random(n) < cfg.taste_strength
    pick = events_rng.integers(tastes.shape[1], size=n)
    group = np.where(from_taste, tastes[user, pick], cfg.n_tastes)  # n_tastes = global
    n_chunks = N_TIME_CHUNKS if cfg.drift > 0 else 1
    chunk = np.minimum((t * n_chunks).astype(np.int64), n_chunks - 1)

    item = _draw_items(
        cfg, events_rng, chunk, group, n_chunks, logz_start, logz_end, is_new, cluster
    )
    # stars: taste matches are liked more; a plausible 1..5 spread
    mean = np.where(from_taste, 4.0, 3.2)
    rating = np.clip(np.rint(events_rng.normal(mean, 0.9)), 1, 5).astype(np.float32)
    seconds = np.floor(t * (cfg.days * SECONDS_PER_DAY)).astype(np.int64)

    order = _log_order(seconds, user, item, n_users, cfg.n_items)
    return pl.DataFrame(
        {
            "user": user[order] + 1,
            "item": item[order] + 1,
            "rating": rating[order],
            "timestamp": _start_unix(cfg.start) + seconds[order],
        },
        schema=SCHEMA,
    )


def _log_order(
    seconds: np.ndarray, user: np.ndarray, item: np.ndarray, n_users: int, n_items: int
) -> np.ndarray:
    """Permutation int64 [n_events] sorting by (time, user, item), like a real log.

    One packed int64 key when the three fit in 63 bits (3-10x faster than lexsort).
    """
    user_bits, item_bits = (n_users - 1).bit_length(), (n_items - 1).bit_length()
    if int(seconds.max()).bit_length() + user_bits + item_bits <= 63:
        return np.argsort((seconds << (user_bits + item_bits)) | (user << item_bits) | item)
    return np.lexsort((item, user, seconds))


def _items(
    cfg: SyntheticCfg, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Start/end log-popularity (float64 [n_items]), new-item mask, taste cluster (int64)."""
    n_items = cfg.n_items
    n_new = min(round(cfg.new_item_share * n_items), n_items - 1) if cfg.drift > 0 else 0
    is_new = np.zeros(n_items, dtype=bool)
    is_new[n_items - n_new :] = True
    # popularity rank is independent of the id; rank 0 is the head of the tail
    logz_start = -cfg.zipf_exponent * np.log1p(rng.permutation(n_items).astype(np.float64))
    logz_end = -cfg.zipf_exponent * np.log1p(rng.permutation(n_items).astype(np.float64))
    cluster = rng.permutation(n_items) % cfg.n_tastes  # balanced cluster sizes
    return logz_start, logz_end, is_new, cluster


def _users(
    cfg: SyntheticCfg, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Tastes int64 [n_users, k], events per user int64 [n_users], activity window in [0, 1)."""
    n_users = cfg.n_users
    k = min(cfg.tastes_per_user, cfg.n_tastes)
    tastes = np.argsort(rng.random((n_users, cfg.n_tastes)), axis=1)[:, :k]
    activity = rng.lognormal(0.0, cfg.activity_sigma, n_users)
    extra = cfg.n_interactions - MIN_EVENTS_PER_USER * n_users
    counts = MIN_EVENTS_PER_USER + rng.multinomial(extra, activity / activity.sum())
    window = np.sort(rng.random((n_users, 2)), axis=1)
    return tastes, counts, window[:, 0], window[:, 1]


def _draw_items(
    cfg: SyntheticCfg,
    rng: np.random.Generator,
    chunk: np.ndarray,
    group: np.ndarray,
    n_chunks: int,
    logz_start: np.ndarray,
    logz_end: np.ndarray,
    is_new: np.ndarray,
    cluster: np.ndarray,
) -> np.ndarray:
    """Item index int64 [n_events], drawn per (time chunk, taste group) segment."""
    n_items = cfg.n_items
    item = np.empty(chunk.shape[0], dtype=np.int64)
    segment = chunk * (cfg.n_tastes + 1) + group
    # stable sort of a small integer key: numpy uses an O(n) radix sort for int16
    small = np.int16 if segment.max() < np.iinfo(np.int16).max else np.int64
    order = np.argsort(segment.astype(small), kind="stable")
    key = segment[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    ends = np.r_[starts[1:], key.shape[0]]
    weights: np.ndarray | None = None
    current_chunk = -1
    for s, e in zip(starts, ends, strict=True):
        c, g = divmod(int(key[s]), cfg.n_tastes + 1)
        if c != current_chunk:
            weights = _popularity(cfg, c, n_chunks, logz_start, logz_end, is_new)
            current_chunk = c
        assert weights is not None
        w = weights if g == cfg.n_tastes else np.where(cluster == g, weights, 0.0)
        total = w.sum()
        if total <= 0:  # a taste cluster with no live item yet: fall back to global
            w, total = weights, weights.sum()
        item[order[s:e]] = rng.choice(n_items, size=e - s, p=w / total)
    return item


def _popularity(
    cfg: SyntheticCfg,
    c: int,
    n_chunks: int,
    logz_start: np.ndarray,
    logz_end: np.ndarray,
    is_new: np.ndarray,
) -> np.ndarray:
    """Unnormalised popularity float64 [n_items] at the middle of time chunk ``c``."""
    mix = cfg.drift * (c + 0.5) / n_chunks
    logw = (1.0 - mix) * logz_start + mix * logz_end
    if is_new.any():
        logw = np.where(is_new, logz_end, logw)  # new items have no past popularity
        if c < n_chunks // 2:
            logw = np.where(is_new, -np.inf, logw)
    return np.exp(logw - logw.max())


def _start_unix(start: str) -> int:
    """``2025-01-01`` or an ISO datetime (naive = UTC) -> unix seconds."""
    try:
        dt = datetime.fromisoformat(start)
    except ValueError:
        raise ValueError(
            f"data.synthetic.start={start!r} is not an ISO date; use e.g. 2025-01-01"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp())
