"""Scale benchmark (issue #16): ingest, sampling, one training epoch and full ranking at size.

A synthetic raw log (``--users`` x ``--items`` x ``--interactions``; default 1M x 100k x
100M) is generated on disk in parts (seeded, vectorized: Zipf(1) item popularity over a
shuffled catalog, lognormal user activity, uniform timestamps over a year), written as the
row groups of one Parquet file. Each stage then runs in its own process, so its peak
memory (``ru_maxrss``, the RSS high-water mark) is its own:

- ingest: ``negsamp.stages.ingest.run`` (streaming checks + aggregation; parquet source);
- sample: the uniform sampler, n_neg 4, one pool epoch (``training_pool``), local, and as
  Ray tasks on 1 and 2 workers: one ``training_pool`` task per ``shard_ranges`` range,
  the CSR shipped once with ``ray.put``; the shards' bytes are compared with the local pool;
- train: one BPR epoch (factors 64, batch 4096, Adam) over that pool, local only (Ray Train
  is another part of issue #16);
- evaluate: full ranking of one held-out item (each user's last CSR item) against the whole
  catalog for the first ``--eval-users`` users, local and as Ray tasks per user range (the
  model's weights put once), extrapolated to every user; the Ray ranks are compared with
  the local ones.

Each process runs with one intra-op thread (OMP/torch); Ray workers likewise. Throughput
is over wall time; memory per worker is each Ray task's own ``ru_maxrss``.

    python bench/scale.py [--quick] [--users N] [--items N] [--interactions N]
                          [--eval-users N] [--ray-workers 1,2] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
N_NEG, SEED, PARTS_ROWS = 4, 0, 5_000_000
QUICK = {"users": 10_000, "items": 2_000, "interactions": 100_000, "eval_users": 10_000}


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(path: Path, n_users: int, n_items: int, n: int, seed: int = SEED) -> dict[str, Any]:
    """Write ``n`` raw events (user, item Int64 raw ids from 1, timestamp Int64) in parts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    item_cdf = np.cumsum(rng.permutation(1.0 / np.arange(1, n_items + 1)))
    user_cdf = np.cumsum(rng.lognormal(0.0, 1.0, n_users))
    schema = pa.schema([("user", pa.int64()), ("item", pa.int64()), ("timestamp", pa.int64())])
    t0 = time.perf_counter()
    with pq.ParquetWriter(path, schema) as out:
        for lo in range(0, n, PARTS_ROWS):
            m = min(PARTS_ROWS, n - lo)
            u = np.searchsorted(user_cdf, rng.random(m) * user_cdf[-1], side="right")
            i = np.searchsorted(item_cdf, rng.random(m) * item_cdf[-1], side="right")
            ts = 1_600_000_000 + rng.integers(0, 365 * 86_400, m)
            out.write_table(pa.table([u + 1, i + 1, ts], schema=schema), row_group_size=1 << 20)
    return {"seconds": time.perf_counter() - t0, "bytes": path.stat().st_size}


# ----------------------------------------------------------------- stages (child processes)


def _train_csr(work: Path) -> Any:
    import polars as pl

    from negsamp.interactions import Interactions

    inter = pl.read_parquet(
        work / "data" / "interim" / "interactions.parquet", columns=["user", "item"]
    )
    ids = [
        pl.read_parquet(work / "data" / "interim" / f"{c}_ids.parquet").height
        for c in ("user", "item")
    ]
    return Interactions.from_arrays(inter["user"].to_numpy(), inter["item"].to_numpy(), *ids)


def stage_ingest(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from negsamp.config import ColumnsCfg, Config, DataCfg
    from negsamp.paths import Paths
    from negsamp.stages import ingest

    cols = ColumnsCfg(user="user", item="item", rating=None, timestamp="timestamp")
    cfg = Config(data=DataCfg(source="parquet", path=str(work / "raw.parquet"), columns=cols))
    t0 = time.perf_counter()
    report = ingest.run(cfg, Paths(root=work))
    s = time.perf_counter() - t0
    keys = ("rows_read", "n_interactions", "n_users", "n_items")
    return {"seconds": s, "rows_per_s": report["rows_read"] / s, **{k: report[k] for k in keys}}


def _digests(pool: Any, ranges: list[tuple[int, int]]) -> list[str]:
    import polars as pl

    return [
        _digest(pool.filter(pl.col("user").is_between(lo, hi, closed="left"))) for lo, hi in ranges
    ]


def _digest(frame: Any) -> str:
    h = hashlib.md5()
    for c in ("user", "pos_item", "neg_items"):
        h.update(frame[c].to_numpy().tobytes())
    return h.hexdigest()


def _shard_task(train: Any, lo: int, hi: int) -> dict[str, Any]:
    """One user range of the pool, as the engine's Ray path samples it (in a worker)."""
    from negsamp.config.samplers import UniformSamplerCfg
    from negsamp.samplers import build_sampler
    from negsamp.samplers.pool import training_pool

    t0 = time.perf_counter()
    pool = training_pool(
        build_sampler(UniformSamplerCfg(), train), train, N_NEG, 1, SEED, user_range=(lo, hi)
    )
    return {
        "digest": _digest(pool),
        "rows": pool.height,
        "seconds": time.perf_counter() - t0,
        "maxrss_mb": _maxrss_mb(),
    }


def _warm() -> int:
    import negsamp.evaluate
    import negsamp.samplers.pool  # noqa: F401

    time.sleep(0.5)
    return os.getpid()


def _ray(workers: int, object_mb: int) -> Any:
    """A local Ray instance of ``workers`` CPUs whose workers have imported negsamp (so
    the timings are the work's, not the workers' start)."""
    from negsamp.cluster import runtime
    from negsamp.config.run import RayCfg

    ray = runtime.ensure(RayCfg(num_cpus=workers, object_store_mb=max(200, object_mb)))
    warm = ray.remote(num_cpus=1)(_warm)
    ray.get([warm.remote() for _ in range(2 * workers)])
    return ray


def stage_sample(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    from negsamp.samplers.pool import shard_ranges

    train = _train_csr(work)
    ranges = shard_ranges(train.n_users, 4)
    if args.workers == 0:
        from negsamp.config.samplers import UniformSamplerCfg
        from negsamp.samplers import build_sampler
        from negsamp.samplers.pool import training_pool

        t0 = time.perf_counter()
        pool = training_pool(build_sampler(UniformSamplerCfg(), train), train, N_NEG, 1, SEED)
        s = time.perf_counter() - t0
        pool.write_parquet(work / "pool.parquet")
        out = {"digests": _digests(pool, ranges), "rows": pool.height}
        return {"seconds": s, "negatives_per_s": pool.height * N_NEG / s, **out}
    nbytes = sum(a.nbytes for a in (train.indptr, train.indices, train.counts, train._keys))
    ray = _ray(args.workers, 3 * nbytes // 2**20)
    task = ray.remote(num_cpus=1)(_shard_task)
    t0 = time.perf_counter()
    ref = ray.put(train)  # once: every task reads the CSR from the object store
    parts = ray.get([task.remote(ref, lo, hi) for lo, hi in ranges])
    s = time.perf_counter() - t0
    rows = sum(p["rows"] for p in parts)
    return {
        "seconds": s,
        "negatives_per_s": rows * N_NEG / s,
        "rows": rows,
        "digests": [p["digest"] for p in parts],
        "csr_mb": nbytes / 2**20,
        "worker_maxrss_mb": max(p["maxrss_mb"] for p in parts),
    }


def _bpr(n_users: int, n_items: int) -> Any:
    from negsamp.config.models import BPRCfg
    from negsamp.models import build_model

    return build_model(BPRCfg(), n_users, n_items)


def stage_train(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    import polars as pl
    import torch

    from negsamp.config.run import TrainCfg
    from negsamp.train import Pool, fit

    train = _train_csr(work)
    pool = Pool.from_frame(pl.read_parquet(work / "pool.parquet"), torch.device("cpu"))
    model = _bpr(train.n_users, train.n_items)
    cfg = TrainCfg(epochs=1, checkpoint=False)
    t0 = time.perf_counter()
    row = fit(model, pool, cfg, SEED, torch.device("cpu"), adapt_threads=False)[0]
    s = time.perf_counter() - t0
    torch.save(model.state_dict(), work / "bpr.pt")
    return {
        "seconds": s,
        "pairs_per_s": float(row["pairs_per_second"]),
        "pairs": pool.users.numel() * N_NEG,
    }


def _held_out(train: Any, n_eval: int) -> tuple[Any, Any]:
    """(mask, test): each of the first ``n_eval`` users with >= 2 positives holds out its
    last CSR item; the mask is every other positive."""
    import polars as pl

    from negsamp.interactions import Interactions

    deg = np.diff(train.indptr)
    users = np.flatnonzero(deg >= 2)[:n_eval]
    last = train.indptr[users + 1] - 1
    keep = np.ones(train.indices.size, bool)
    keep[last] = False
    mask = Interactions.from_arrays(
        train.rows()[keep], train.indices[keep], train.n_users, train.n_items
    )
    test = pl.DataFrame({"user": users.astype(np.int32), "item": train.indices[last]})
    return mask, test


def _rank_task(state: dict, n_users: int, n_items: int, mask: Any, test: Any) -> dict[str, Any]:
    import torch

    from negsamp.evaluate import full_ranking

    model = _bpr(n_users, n_items)
    model.load_state_dict(state)
    t0 = time.perf_counter()
    with torch.no_grad():
        fr = full_ranking(model.score_all, mask, test, 10, "cpu", 256)
    return {"position": fr.position, "seconds": time.perf_counter() - t0, "maxrss_mb": _maxrss_mb()}


def stage_evaluate(work: Path, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    train = _train_csr(work)
    mask, test = _held_out(train, args.eval_users)
    state = torch.load(work / "bpr.pt")
    n_eval = test.height
    if args.workers == 0:
        out = _rank_task(state, train.n_users, train.n_items, mask, test)
        positions = out["position"]
        s = out["seconds"]
    else:
        ray = _ray(args.workers, (mask.indices.nbytes * 3) // 2**20)
        task = ray.remote(num_cpus=1)(_rank_task)
        t0 = time.perf_counter()
        refs = ray.put(state), ray.put(mask)  # once: the item table and the mask
        cuts = np.linspace(0, n_eval, 2 * args.workers + 1).astype(int)
        parts = ray.get(
            [
                task.remote(refs[0], train.n_users, train.n_items, refs[1], test[a:b])
                for a, b in zip(cuts[:-1], cuts[1:], strict=True)
            ]
        )
        s = time.perf_counter() - t0
        positions = np.concatenate([p["position"] for p in parts])
    users_all = int((np.diff(train.indptr) >= 2).sum())
    res = {
        "seconds": s,
        "users": n_eval,
        "users_per_s": n_eval / s,
        "all_users": users_all,
        "seconds_all_users": s * users_all / n_eval,
        "position_md5": hashlib.md5(np.asarray(positions, np.int64).tobytes()).hexdigest(),
        "recall_at_10": float((positions < 10).mean()),
    }
    if args.workers:
        res["worker_maxrss_mb"] = max(p["maxrss_mb"] for p in parts)
    return res


STAGES = {
    "ingest": stage_ingest,
    "sample": stage_sample,
    "train": stage_train,
    "evaluate": stage_evaluate,
}


def child(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(1)
    res = STAGES[args.stage](Path(args.workdir), args)
    res["maxrss_mb"] = _maxrss_mb()
    if args.workers:
        from negsamp.cluster import runtime

        runtime.shutdown()
    print("RESULT " + json.dumps(res), flush=True)
    return 0


def run_stage(stage: str, work: Path, args: argparse.Namespace, workers: int = 0) -> dict[str, Any]:
    """``stage`` in a child process (its own peak memory), or here with ``--in-process``."""
    if args.in_process:
        res = STAGES[stage](work, argparse.Namespace(workers=workers, eval_users=args.eval_users))
        res["maxrss_mb"] = _maxrss_mb()
        if workers:
            from negsamp.cluster import runtime

            runtime.shutdown()
        return res
    cmd = [
        sys.executable,
        __file__,
        "--stage",
        stage,
        "--workdir",
        str(work),
        "--workers",
        str(workers),
        "--eval-users",
        str(args.eval_users),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
    if p.returncode or not lines:
        raise RuntimeError(f"stage {stage} (workers {workers}) failed:\n{p.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def _fmt(rate: float) -> str:
    return f"{rate / 1e6:.2f}M" if rate >= 1e6 else f"{rate / 1e3:.1f}k"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10k users x 2k items x 100k events")
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--interactions", type=int, default=100_000_000)
    ap.add_argument("--eval-users", type=int, default=100_000, help="users ranked (extrapolated)")
    ap.add_argument("--ray-workers", default="1,2", help="comma list; empty: no Ray runs")
    ap.add_argument("--workdir", help="where the raw log and outputs go (default: a temp dir)")
    ap.add_argument(
        "--in-process",
        action="store_true",
        help="run the stages in this process (faster start; peak memory is then cumulative)",
    )
    ap.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)
    ap.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.stage:
        return child(args)
    if args.quick:
        for k, v in QUICK.items():
            setattr(args, k, v)
    workers = [int(w) for w in args.ray_workers.split(",") if w.strip()]
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        print(
            f"scale: {args.users:,} users x {args.items:,} items x {args.interactions:,} events",
            flush=True,
        )
        g = generate(work / "raw.parquet", args.users, args.items, args.interactions)
        print(f"generate: {g['seconds']:.1f} s, {g['bytes'] / 2**20:.0f} MiB on disk", flush=True)
        rows: list[tuple[str, str, dict[str, Any], str]] = []

        def record(stage: str, engine: str, res: dict[str, Any], rate: str) -> None:
            rows.append((stage, engine, res, rate))
            print(
                f"{stage} [{engine}]: {json.dumps({k: v for k, v in res.items() if k != 'digests'})}",
                flush=True,
            )

        ing = run_stage("ingest", work, args)
        record("ingest", "local", ing, f"{_fmt(ing['rows_per_s'])} rows/s")
        local = run_stage("sample", work, args)
        record("sample", "local", local, f"{_fmt(local['negatives_per_s'])} neg/s")
        same = True
        for w in workers:
            r = run_stage("sample", work, args, w)
            same &= r["digests"] == local["digests"]
            record("sample", f"ray x{w}", r, f"{_fmt(r['negatives_per_s'])} neg/s")
        tr = run_stage("train", work, args)
        record("train (1 epoch)", "local", tr, f"{_fmt(tr['pairs_per_s'])} pairs/s")
        ev = run_stage("evaluate", work, args)
        record("full ranking", "local", ev, f"{_fmt(ev['users_per_s'])} users/s")
        for w in workers:
            r = run_stage("evaluate", work, args, w)
            same &= r["position_md5"] == ev["position_md5"]
            record("full ranking", f"ray x{w}", r, f"{_fmt(r['users_per_s'])} users/s")
    print(
        "\n| stage | engine | wall s | throughput | peak RSS driver MiB | peak RSS per worker MiB |"
    )
    print("|---|---|---|---|---|---|")
    for stage, engine, res, rate in rows:
        worker = f"{res['worker_maxrss_mb']:.0f}" if "worker_maxrss_mb" in res else "-"
        print(
            f"| {stage} | {engine} | {res['seconds']:.1f} | {rate} | {res['maxrss_mb']:.0f} | {worker} |"
        )
    print(
        f"\nfull ranking: {ev['users']:,} of {ev['all_users']:,} users ranked; all users "
        f"extrapolated: {ev['seconds_all_users']:.0f} s (local)"
    )
    if args.in_process:
        print("(--in-process: peak RSS is this process's, cumulative over the stages)")
    print("Ray shards vs local: " + ("identical pools and ranks" if same else "MISMATCH"))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
