"""`negsamp registry show` wall time on a store with many versions (issue #13, point 5).

Builds a tiny project (tests/unit/mlops/world.py) in ``--dir``, registers ``--versions``
models through the register stage (alternately better and worse, so champion, challenger
and previous_champion are all set), then times ``negsamp registry show`` as a user runs
it (a fresh process, imports included) against ``python -c 'import negsamp.cli'`` in the
same run: the ratio says how much of the time is the registry read, not the start-up.

    python bench/registry_show.py [--versions 10 --dir /tmp/negsamp-registry-bench --repeat 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(root: Path, n: int) -> None:
    import polars as pl

    from negsamp.stages import register
    from tests.unit.mlops import world

    metric = "sampled_ndcg_10"
    cfg = world.config()
    paths = world.build(root, cfg, seed=0)
    (root / "params.yaml").write_text("registry:\n  model_name: negsamp\n  n_resamples: 200\n")
    champ = world.per_user(paths, metric)
    for i in range(n):
        if i:
            world.train_model(paths, cfg, seed=10 * i)
            step = 0.05 * i if i % 3 else -0.1
            world.set_challenger(
                paths, metric, champ.with_columns(pl.col(metric) + step), 0.3 + step
            )
        register.run(cfg, paths)


def timed(cmd: list[str], cwd: Path, repeat: int) -> tuple[float, str]:
    best, out = float("inf"), ""
    for _ in range(repeat):
        t = time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=True)
        best, out = min(best, time.perf_counter() - t), done.stdout
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--versions", type=int, default=10)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/negsamp-registry-bench"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    root = args.dir.resolve()
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root}/mlflow.db"
    if not (root / "mlflow.db").is_file():
        root.mkdir(parents=True, exist_ok=True)
        os.chdir(root)
        t = time.perf_counter()
        build(root, args.versions)
        print(f"built {args.versions} versions in {time.perf_counter() - t:.1f} s")
    negsamp = [sys.executable, "-m", "negsamp", "registry", "show"]
    show, out = timed(negsamp, root, args.repeat)
    start, _ = timed([sys.executable, "-c", "import negsamp.cli"], root, args.repeat)
    print(out)
    print(f"registry show: {show:.2f} s (best of {args.repeat}); CLI import alone: {start:.2f} s")
    print(f"ratio show / import: {show / start:.1f}x")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
