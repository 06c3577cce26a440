"""Training speed against the `implicit` library, same data, same factors, same run.

* iALS: seconds per full iteration (users + items half-step) of ours and of implicit's
  AlternatingLeastSquares (conjugate gradient, 3 steps both), fed the same confidence
  matrix (1 + alpha * count * recency weight) with the same regularisation, and the HR@10
  both reach on the same 99 sampled candidates of the leave-one-out test items (median
  seconds, mean +- std of HR@10 over ``--seeds`` initialisations).
* BPR: (positive, negative) pairs per second of one epoch of ours (shared trainer, pool of
  n_neg uniform negatives, batch >= 8192) and of implicit's BayesianPersonalizedRanking
  (Hogwild SGD, one sampled negative per positive per epoch); ours is the median of 7 epochs
  after a warm-up one.
* ``--memory``: peak resident memory of a training run of each (ours), in a child process.
* On CUDA (when present): the GPU speed-up of our iALS iteration and BPR epoch.
* in_batch (ML-100k): seconds per epoch against a uniform pool's at the same batch.
* ``--default-wait``: leave OMP_WAIT_POLICY unset (torch's spinning workers) instead of the
  PASSIVE that ``import negsamp`` sets, to measure what it changes.
* ``--thread-study``: BPR on ML-100k at 1 and 2 threads (the trainer's governor off and
  on) and implicit at 1 and 2, each with and without one competing CPU-bound process that
  this script spawns (a busy loop), as ratios to the no-competitor figure.

Data: MovieLens-100k and ml-latest-small (../shared/data, skipped when absent), or a
synthetic set of about 2M interactions (``synthetic``: 50k users x 20k items, Zipf
popularity). Threads: ``--threads`` for torch and implicit alike (BLAS pinned to 1 thread
for implicit, as it asks). Each row prints ours / implicit with the issue #17 target.

    python bench/train.py [--data ml100k,mlsmall,synthetic] [--threads 2] [--factors 64]
                          [--n-neg 1,4] [--thread-study] [--memory] [--data-dir DIR] [--no-peer]

--no-peer (implied when `implicit` is not installed, as on a GPU machine) skips implicit's
runs and the memory children: our CPU and CUDA figures only. --data-dir (default
../shared/data) holds movielens-100k/u.data and ml-latest-small/ratings.csv.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TQDM_DISABLE", "1")  # before tqdm is imported: bars would drown the table
if "--default-wait" not in sys.argv:  # else torch's own (spinning) OpenMP wait, to compare
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `import negsamp` sets it, before torch

import argparse
import json
import resource
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from negsamp import evaluate as ev
from negsamp import train as trainer
from negsamp.config import DataCfg, IALSCfg, SplitCfg, SyntheticCfg, TrainCfg, UniformSamplerCfg
from negsamp.data.encode import encode, to_implicit
from negsamp.data.loaders import load_raw
from negsamp.data.synthetic import generate
from negsamp.interactions import Interactions
from negsamp.models import build_model, model_config
from negsamp.split import split

DATA_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
if os.environ.get("NEGSAMP_BENCH_DATA"):  # set from --data-dir, also for the memory children
    DATA_DIR = Path(os.environ["NEGSAMP_BENCH_DATA"])
ML100K = DATA_DIR / "movielens-100k" / "u.data"
MLSMALL = DATA_DIR / "ml-latest-small" / "ratings.csv"
SYNTHETIC = SyntheticCfg(n_users=50_000, n_items=20_000, n_interactions=2_900_000)


def load(name: str) -> dict[str, Any]:
    """Leave-one-out split (the pipeline's), train CSR, recency weights, test candidates."""
    if name == "ml100k":
        raw = load_raw(DataCfg(source="movielens-100k", path=str(ML100K.resolve())))
    elif name == "mlsmall":
        raw = load_raw(DataCfg(source="movielens-csv", path=str(MLSMALL.resolve())))
    else:
        raw = generate(SYNTHETIC, seed=0)
    inter, users, items = encode(to_implicit(raw, None))
    s = split(inter, SplitCfg())
    n_users, n_items = users.height, items.height
    train = Interactions.from_frame(s.train, n_users, n_items)
    from negsamp.samplers.pool import eval_candidates

    known = Interactions.from_frame(pl.concat([s.train, s.valid, s.test]), n_users, n_items)
    cands = eval_candidates(known, s.test.select("user", "item"), 99, seed=0)
    return {"name": name, "train": train, "frame": s.train, "cands": cands}


def hr10(score, cands: pl.DataFrame) -> float:  # noqa: ANN001
    return float((ev.sampled_ranks(score, cands, torch.device("cpu"), 4096) < 10).mean())


def confidence(d: dict[str, Any], cfg: IALSCfg) -> Interactions:
    """The training CSR with counts * recency weight: what both ALS implementations get."""
    w = trainer.recency_weights(d["frame"], cfg.recency_boost, cfg.recency_window)
    t = d["train"]
    return t if w is None else Interactions(t.indptr, t.indices, t.counts * w, t.n_users, t.n_items)


def ours_ials(
    d: dict[str, Any], cfg: IALSCfg, device: str = "cpu", seed: int = 0
) -> dict[str, float]:
    conf = confidence(d, cfg)
    model = build_model(cfg, conf.n_users, conf.n_items, torch.Generator().manual_seed(seed))
    model.prepare(conf, torch.device(device))
    times = []
    for _ in range(cfg.iterations):
        t0 = time.perf_counter()
        model.step()
        if device != "cpu":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    model.to("cpu")
    return {"s_per_iter": statistics.median(times), "hr10": hr10(model.score, d["cands"])}


def implicit_ials(d: dict[str, Any], cfg: IALSCfg, threads: int, seed: int = 0) -> dict[str, float]:
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    conf = confidence(d, cfg)
    # implicit's confidence is the matrix value itself: give it 1 + alpha * count
    values = (1.0 + cfg.alpha * conf.counts).astype(np.float32)
    m = sp.csr_matrix((values, conf.indices, conf.indptr), shape=(conf.n_users, conf.n_items))
    times: list[float] = []
    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(
            factors=cfg.factors, regularization=cfg.reg, alpha=1.0, iterations=cfg.iterations,
            use_cg=True, num_threads=threads, random_state=seed,
        )  # fmt: skip
        als.fit(m, show_progress=False, callback=lambda it, elapsed, loss: times.append(elapsed))
    uf, itf = torch.as_tensor(als.user_factors), torch.as_tensor(als.item_factors)
    score = lambda u, i: torch.bmm(itf[i], uf[u].unsqueeze(2)).squeeze(2)  # noqa: E731
    return {"s_per_iter": statistics.median(times), "hr10": hr10(score, d["cands"])}


def bpr_pool(d: dict[str, Any], n_neg: int, epochs: int, device: str = "cpu") -> trainer.Pool:
    from negsamp.samplers import build_sampler
    from negsamp.samplers.pool import training_pool

    sampler = build_sampler(UniformSamplerCfg(n_neg=n_neg, pool_epochs=epochs), d["train"])
    frame = training_pool(sampler, d["train"], n_neg, epochs, seed=0)
    return trainer.Pool.from_frame(frame, torch.device(device))


def ours_bpr(
    d: dict[str, Any], batch: int, n_neg: int, device: str = "cpu", adapt: bool = True
) -> dict[str, float]:
    """adapt: the trainer's thread governor on (what users get) or off (torch's count fixed)."""
    t = d["train"]
    pool = bpr_pool(d, n_neg, 2, device)
    cfg = model_config({"name": "bpr", "factors": 64, "recency_boost": 0.0})
    model = build_model(cfg, t.n_users, t.n_items, torch.Generator().manual_seed(0))
    tc = TrainCfg(epochs=8, batch_size=batch, patience=0, checkpoint=False)
    hist = trainer.fit(model, pool, tc, 0, torch.device(device), adapt_threads=adapt)
    model.to("cpu")
    rate = statistics.median(h["pairs_per_second"] for h in hist[1:])  # epoch 0 warms up
    return {
        "pairs_per_s": rate,
        "s_per_epoch": statistics.median(h["seconds"] for h in hist[1:]),
        "hr10_after_8_epochs": hr10(model.score, d["cands"]),
    }


def ours_in_batch(d: dict[str, Any], batch: int, epochs: int = 8) -> float:
    """Median seconds per epoch of BPR's model trained with in_batch negatives (logQ on),
    measured as :func:`ours_bpr` measures the uniform pool: epochs after the first."""
    from pydantic import TypeAdapter

    from negsamp.config import SamplerCfg

    t = d["train"]
    pool = trainer.Pool.from_positives(t, torch.device("cpu"))
    cfg = model_config({"name": "bpr", "factors": 64, "recency_boost": 0.0})
    model = build_model(cfg, t.n_users, t.n_items, torch.Generator().manual_seed(0))
    sampler = TypeAdapter(SamplerCfg).validate_python({"name": "in_batch"})
    tc = TrainCfg(epochs=epochs, batch_size=batch, patience=0, checkpoint=False)
    hist = trainer.fit(model, pool, tc, 0, torch.device("cpu"), sampler=sampler, train=t)
    return statistics.median(h["seconds"] for h in hist[1:])  # epoch 0 warms up


def implicit_bpr(d: dict[str, Any], threads: int) -> dict[str, float]:
    import scipy.sparse as sp
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    t = d["train"]
    m = sp.csr_matrix((np.ones(t.nnz, np.float32), t.indices, t.indptr), (t.n_users, t.n_items))
    iters = 20
    bpr = BayesianPersonalizedRanking(
        factors=64, iterations=iters, num_threads=threads, random_state=0
    )
    t0 = time.perf_counter()
    bpr.fit(m, show_progress=False)
    rate = t.nnz * iters / (time.perf_counter() - t0)  # one negative per positive per epoch
    uf, itf = torch.as_tensor(bpr.user_factors), torch.as_tensor(bpr.item_factors)
    score = lambda u, i: torch.bmm(itf[i], uf[u].unsqueeze(2)).squeeze(2)  # noqa: E731
    return {"pairs_per_s": rate, "hr10_after_20_epochs": hr10(score, d["cands"])}


def over_seeds(fn, seeds: int) -> dict[str, float]:  # noqa: ANN001
    """Median seconds, mean and std of HR@10 over ``seeds`` random initialisations."""
    runs = [fn(s) for s in range(seeds)]
    hr = [r["hr10"] for r in runs]
    return {
        "s_per_iter": statistics.median(r["s_per_iter"] for r in runs),
        "hr10": statistics.mean(hr),
        "hr10_std": statistics.stdev(hr) if len(hr) > 1 else 0.0,
    }


def child(spec: str, threads: int) -> None:
    """One training run of ours (``model:data``) in this process; prints its peak RSS."""
    torch.set_num_threads(threads)
    model, data = spec.split(":")
    d = load(data)
    if model == "ials":
        ours_ials(d, IALSCfg(factors=64))
    else:
        ours_bpr(d, 8192, 4)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"peak_mib": peak / 1024}))


def peak_memory(spec: str, threads: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", spec, "--threads", str(threads)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def competitor() -> subprocess.Popen:
    """One other CPU-bound process (a busy loop) at this process's niceness."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def thread_study(d: dict[str, Any], batch: int, no_peer: bool, threads: int) -> None:
    """BPR pairs/s at 1 and 2 threads, the governor on and off, with and without a
    competing CPU-bound process; implicit at 1 and 2 threads beside (issue #17)."""
    print(f"  threads study (BPR, n_neg 4, batch {batch}; pairs/s, ratio to the idle figure):")
    base: dict[str, float] = {}
    for compete in (False, True):
        proc = competitor() if compete else None
        try:
            rates: dict[str, float] = {}
            for n in () if no_peer else (1, 2):
                rates[f"implicit {n} thread(s)"] = implicit_bpr(d, n)["pairs_per_s"]
            for n, adapt in ((1, False), (2, False), (2, True)):
                torch.set_num_threads(n)
                label = f"ours {n} thread(s)" + (", governor" if adapt else ", fixed")
                rates[label] = ours_bpr(d, batch, 4, adapt=adapt)["pairs_per_s"]
        finally:
            if proc is not None:
                proc.kill()
                proc.wait()
            torch.set_num_threads(threads)
        for label, rate in rates.items():
            base.setdefault(label, rate)
            tag = "with a competitor" if compete else "idle (but shared)"
            print(
                f"    {label:28s} {tag:18s} {rate / 1e6:6.2f}M pairs/s  "
                f"{rate / base[label]:5.2f}x its no-competitor rate"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="ml100k,mlsmall")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8192, help="BPR batch size")
    ap.add_argument("--seeds", type=int, default=3, help="initialisations averaged for iALS")
    ap.add_argument("--n-neg", default="1,4", help="BPR negatives per positive")
    ap.add_argument("--data-dir", help="holds movielens-100k/, ml-latest-small/")
    ap.add_argument("--no-peer", action="store_true", help="skip implicit and the memory runs")
    ap.add_argument("--memory", action="store_true", help="peak RSS of a run, in a child")
    ap.add_argument("--thread-study", action="store_true", help="1/2 threads x competitor")
    ap.add_argument(
        "--default-wait", action="store_true", help="leave OMP_WAIT_POLICY unset (spinning)"
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.data_dir:
        global ML100K, MLSMALL
        os.environ["NEGSAMP_BENCH_DATA"] = str(Path(a.data_dir).resolve())
        ML100K = Path(a.data_dir).resolve() / "movielens-100k" / "u.data"
        MLSMALL = Path(a.data_dir).resolve() / "ml-latest-small" / "ratings.csv"
    try:
        import implicit  # noqa: F401
    except ImportError:
        if not a.no_peer:
            print("implicit is not installed: its runs and the memory runs are skipped")
        a.no_peer = True
    if a.child:
        return child(a.child, a.threads)
    torch.set_num_threads(a.threads)
    cfg = IALSCfg(factors=a.factors)
    limits = {"ml100k": 1024, "mlsmall": 1024, "synthetic": 4096}
    files = {"ml100k": ML100K, "mlsmall": MLSMALL}
    avg = "/".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"threads={a.threads} factors={a.factors} torch={torch.__version__} load average={avg} "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset (torch default: spin)')} "
        "(a shared machine: absolute figures move with the load, the ratios much less)"
    )
    for name in a.data.split(","):
        if name in files and not files[name].exists():
            print(f"[{name}] skipped: {files[name]} not found")
            continue
        d = load(name)
        t = d["train"]
        print(f"\n[{name}] train positives {t.nnz:,} ({t.n_users:,} users x {t.n_items:,} items)")
        mine = over_seeds(lambda s, d=d: ours_ials(d, cfg, seed=s), a.seeds)
        ials = f"  iALS s/iteration: ours {mine['s_per_iter']:.4f} HR@10 {mine['hr10']:.4f}"
        if not a.no_peer:
            ref = over_seeds(lambda s, d=d: implicit_ials(d, cfg, a.threads, s), a.seeds)
            ials += (
                f" | implicit ALS {ref['s_per_iter']:.4f} HR@10 {ref['hr10']:.4f} | ratio "
                f"ours/implicit {mine['s_per_iter'] / ref['s_per_iter']:.2f} (target <= 0.70)"
            )
        print(ials + f" (means over {a.seeds} inits)")
        rb = None if a.no_peer else implicit_bpr(d, a.threads)
        cpu_bpr = {}
        for n_neg in (int(k) for k in a.n_neg.split(",")):
            mb = ours_bpr(d, a.batch, n_neg)
            cpu_bpr[n_neg] = mb["pairs_per_s"]
            row = (
                f"  BPR n_neg {n_neg}, {a.threads} threads: ours {mb['pairs_per_s'] / 1e6:.2f}M "
                f"pairs/s (HR@10 after 8 epochs {mb['hr10_after_8_epochs']:.4f})"
            )
            if rb is not None:
                row += (
                    f" | implicit {rb['pairs_per_s'] / 1e6:.2f}M pairs/s (HR@10 after 20 "
                    f"{rb['hr10_after_20_epochs']:.4f}) | ratio ours/implicit "
                    f"{mb['pairs_per_s'] / rb['pairs_per_s']:.2f} (target >= 1.00)"
                )
            print(row)
        if name == "ml100k":  # the pipeline's batch (train.batch_size) for both
            uni = ours_bpr(d, 4096, 4)["s_per_epoch"]
            ib = ours_in_batch(d, 4096)
            print(
                f"  in_batch s/epoch (batch 4096: a softmax over the batch's distinct users x "
                f"items per step): {ib:.3f} | "
                f"uniform pool, n_neg 4: {uni:.3f} | ratio {ib / uni:.1f} (target <= 3.0)"
            )
        if a.thread_study and name == "ml100k":
            thread_study(d, a.batch, a.no_peer, a.threads)
        for model in ("ials", "bpr") if a.memory and not a.no_peer else ():
            mem = peak_memory(f"{model}:{name}", a.threads)
            print(
                f"  memory {model}: peak RSS {mem['peak_mib']:.0f} MiB of the whole run, data "
                f"preparation included (limit {limits[name]} MiB)"
            )
        if torch.cuda.is_available():
            gi = over_seeds(lambda s, d=d: ours_ials(d, cfg, "cuda", s), a.seeds)
            print(
                f"  CUDA  iALS {gi['s_per_iter']:.4f} s/iter ({mine['s_per_iter'] / gi['s_per_iter']:.1f}x"
                f" CPU at {a.threads} threads) HR@10 {gi['hr10']:.4f} (+-{gi['hr10_std']:.4f})"
            )
            for n_neg, cpu_rate in cpu_bpr.items():
                gb = ours_bpr(d, a.batch, n_neg, "cuda")
                print(
                    f"  CUDA  BPR n_neg {n_neg}: {gb['pairs_per_s'] / 1e6:.1f}M pairs/s "
                    f"({gb['pairs_per_s'] / cpu_rate:.1f}x CPU at {a.threads} threads), HR@10 "
                    f"after 8 epochs {gb['hr10_after_8_epochs']:.4f}"
                )
        else:
            print("  CUDA  no GPU visible in this run")

    print(f"\nload average at the end: {'/'.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
