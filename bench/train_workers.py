"""Epoch time of the train stage in process against Ray Train workers (issue #16, item 4).

Runs the real stages on MovieLens-100k (``../shared/data/movielens-100k/u.data``; the
synthetic default with ``--synthetic``) in a temporary project: ingest .. sample-negatives
once, then the train stage in process (``train.distributed.workers: 1``) and with
``--workers`` Ray Train workers (``base.engine: ray``, a local instance of ``--cpus`` CPUs
on 127.0.0.1), the same BPR, seed and epochs. Prints each run's median epoch seconds
(rank 0's, from history.json, the first epoch left out), the stage's wall time (Ray's
start-up included), the best validation NDCG@10 of each, and the ratio of epoch times.
Set OMP_NUM_THREADS=1 to give every worker one core.

    OMP_NUM_THREADS=1 python bench/train_workers.py [--workers 2 --epochs 8 --synthetic]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
ML100K = REPO.parent / "shared" / "data" / "movielens-100k" / "u.data"


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--synthetic", action="store_true", help="the synthetic default data")
    return p.parse_args()


def _project(root: Path, args: argparse.Namespace) -> None:
    from negsamp import config

    doc = config.read_document(REPO / "params.yaml")
    if not args.synthetic:
        if not ML100K.is_file():
            raise SystemExit(f"{ML100K} not found: pass --synthetic")
        doc["data"].update(source="movielens-100k", path=str(ML100K))
    doc["model"]["name"], doc["sampler"]["name"] = "bpr", "uniform"
    doc["train"].update(epochs=args.epochs, batch_size=args.batch, patience=0)
    doc["sweep"]["configs"] = {"bpr": {}}
    (root / "params.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def _train(root: Path, workers: int, cpus: int) -> tuple[float, float, float]:
    """(median epoch s, stage wall s, best valid NDCG@10) of one train stage run."""
    from negsamp import config
    from negsamp.io import read_json
    from negsamp.paths import Paths
    from negsamp.stages import run_stage

    doc = config.dump(config.load(root / "params.yaml"))
    if workers > 1:
        doc["base"]["engine"] = "ray"
        doc["ray"].update(num_cpus=cpus, object_store_mb=200)
        doc["train"]["distributed"]["workers"] = workers
    t0 = time.perf_counter()
    run_stage("train", config.from_dict(doc), Paths(root), "bpr")
    wall = time.perf_counter() - t0
    history = read_json(Paths(root).for_variant("bpr").train_history)
    epoch = statistics.median(r["seconds"] for r in history[1:])
    return epoch, wall, max(r["valid_sampled_ndcg_10"] for r in history)


def main() -> None:
    args = _args()
    from negsamp import config
    from negsamp.cluster import runtime
    from negsamp.paths import Paths
    from negsamp.stages import run_stage

    with tempfile.TemporaryDirectory(prefix="negsamp-bench-") as tmp:
        root = Path(tmp)
        os.chdir(root)
        _project(root, args)
        cfg = config.load(root / "params.yaml")
        for name in ("synthesize", "ingest", "validate", "split", "sample-negatives"):
            if name != "synthesize" or args.synthetic:
                run_stage(name, cfg, Paths(root), "bpr" if name == "sample-negatives" else None)
        data = "synthetic" if args.synthetic else "MovieLens-100k"
        threads = os.environ.get("OMP_NUM_THREADS", "unset")
        print(f"{data}, BPR, {args.epochs} epochs, batch {args.batch}, OMP_NUM_THREADS={threads}")
        one = _train(root, 1, args.cpus)
        try:
            many = _train(root, args.workers, args.cpus)
        finally:
            runtime.shutdown()
    for what, (epoch, wall, best) in (("in process", one), (f"{args.workers} Ray workers", many)):
        print(f"{what:>16}: epoch {epoch:.3f} s, stage {wall:.1f} s, best NDCG@10 {best:.4f}")
    print(f"epoch time ratio (in process / Ray): {one[0] / many[0]:.2f}")


if __name__ == "__main__":
    main()
