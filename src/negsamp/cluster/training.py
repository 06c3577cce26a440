"""Data-parallel training on Ray Train (``train.distributed.workers > 1``): the trainer of
:func:`negsamp.train.train_configured` on every worker of a ``TorchTrainer``, with
DistributedDataParallel between them (gloo on CPU workers, NCCL on GPU ones).

What is replicated: every worker holds the whole model (the embedding tables included),
its optimizer state, and the whole pool (the training rows, the validation and test rows
and the pool are put in the object store once; workers on the driver's node read them
from shared memory). Each worker starts from the driver's initial weights and walks the
same shuffled order of the epoch's pool rows (the seed's); worker r trains on rows r, r+W,
r+2W, ... of every batch (deterministic given the seed and W), its mean loss weighted by
its share of the batch, and DDP averages the gradients: a step is the single-process step
on the whole batch, up to the order of float sums, and every replica takes it.

Rank 0 ranks the validation item after each epoch, decides early stopping (broadcast to
the others) and keeps the best weights. It sends each epoch's history row, and at the end
the kept weights with the history, to the driver through a Ray queue; the driver hands
the rows to ``on_epoch`` (the live MLflow run) while training runs and returns a model
holding those weights, which the train stage saves as the in-process path does. No
checkpoint is written (the config refuses ``train.resume`` with workers > 1).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable
from typing import Any

import polars as pl
import torch
from torch import nn

from negsamp import train as trainer
from negsamp.cluster.runtime import ClusterError, ensure
from negsamp.config.run import RayCfg
from negsamp.models import build_model

log = logging.getLogger(__name__)

_POLL_S = 0.5  # how often the driver looks at the queue while the workers train


def backend(use_gpu: bool) -> str:
    """The torch.distributed backend Ray Train sets up: NCCL between GPUs, gloo on CPUs."""
    return "nccl" if use_gpu else "gloo"


def fit(
    ray_cfg: RayCfg,
    cfg: Any,
    frame: pl.DataFrame,
    n_users: int,
    n_items: int,
    *,
    valid: pl.DataFrame | None,
    test: pl.DataFrame | None,
    pool: Callable[[], pl.DataFrame],
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[Any, list[dict[str, Any]]]:
    """Train the configured model on ``cfg.train.distributed.workers`` Ray Train workers.

    Same arguments as :func:`negsamp.train.train_configured` (``pool`` is read once, here);
    each history row also says ``workers`` and ``backend``. Returns (model in eval mode on
    the CPU, holding rank 0's kept weights; rank 0's per-epoch history).
    """
    ray = ensure(ray_cfg)
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.util.queue import Empty, Queue

    dist = cfg.train.distributed
    model = trainer.initial_model(cfg, n_users, n_items)
    data = {"frame": frame, "valid": valid, "test": test, "pool": pool()}
    queue = Queue(actor_options={"num_cpus": 0})  # no CPU kept from the workers
    conf = {
        "cfg": cfg,
        "sizes": (n_users, n_items),
        "data": {k: ray.put(v) for k, v in data.items()},  # once, read by every worker
        "init": ray.put({k: v.detach().cpu() for k, v in model.state_dict().items()}),
        "queue": queue,
    }
    log.info(
        "training %s on %d Ray Train workers (%s)",
        cfg.model.name,
        dist.workers,
        backend(dist.use_gpu),
    )
    with tempfile.TemporaryDirectory(prefix="negsamp-train-") as storage:
        job = TorchTrainer(
            _worker,
            train_loop_config=conf,
            scaling_config=ScalingConfig(num_workers=dist.workers, use_gpu=dist.use_gpu),
            torch_config=TorchConfig(backend=backend(dist.use_gpu)),
            run_config=RunConfig(name="train", storage_path=storage),
        )
        failed: list[BaseException] = []
        runner = threading.Thread(target=_fit, args=(job, failed), daemon=True)
        runner.start()
        final = None
        while final is None and (runner.is_alive() or not queue.empty()):
            try:
                kind, *item = queue.get(timeout=_POLL_S)
            except Empty:
                continue
            if kind == "epoch" and on_epoch is not None:
                on_epoch(item[0])
            elif kind == "done":
                final = item
        runner.join()
    queue.shutdown()
    if failed or final is None:
        # a worker's traceback ends with its exception's line
        why = str(failed[0]).strip().splitlines()[-1] if failed else "rank 0 sent no weights"
        raise ClusterError(
            f"distributed training failed on the Ray workers ({why}); set "
            "train.distributed.workers=1 to train in process"
        ) from (failed[0] if failed else None)
    state, history = final
    model.load_state_dict(state)
    return model.eval(), history


def _fit(job: Any, failed: list[BaseException]) -> None:
    try:
        job.fit()
    except BaseException as err:  # noqa: BLE001 - the driver raises it, with the worker's message
        failed.append(err)


def _worker(conf: dict[str, Any]) -> None:
    """One Ray Train worker: the trainer on its rows of every batch (see the module doc)."""
    import ray
    import ray.train
    import ray.train.torch

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()
    data = {k: ray.get(ref) for k, ref in conf["data"].items()}
    cfg, (n_users, n_items) = conf["cfg"], conf["sizes"]
    model = build_model(cfg.model.active, n_users, n_items)
    model.load_state_dict(ray.get(conf["init"]))  # the driver's initial weights, on every rank
    tag = {"workers": world, "backend": backend(device.type == "cuda")}
    queue = conf["queue"]

    def on_epoch(row: dict[str, float]) -> None:
        if rank == 0:
            queue.put(("epoch", {**row, **tag}))

    def no_exclude() -> Any:  # the config refuses what would call it (max_item_share, sequential)
        raise RuntimeError("distributed training does not redraw negatives")

    model, history = trainer.train_configured(
        cfg,
        data["frame"],
        n_users,
        n_items,
        device,
        valid=data["valid"] if rank == 0 else None,
        pool=lambda: data["pool"],
        exclude=no_exclude,
        test=data["test"],
        on_epoch=on_epoch,
        parallel=Replica(rank, world, device),
        model=model,
    )
    if rank == 0:
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        queue.put(("done", state, [{**row, **tag} for row in history]))


class _Loss(nn.Module):
    """A batch loss as a module's forward, so DDP sees the model's parameters used."""

    def __init__(self, model: nn.Module, loss: Callable[..., torch.Tensor]) -> None:
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, *batch: Any) -> torch.Tensor:
        return self.loss(self.model, *batch)


class Replica:
    """Worker ``rank`` of ``world``: its rows of a batch, the DDP-wrapped loss, the epoch's
    loss summed over workers, rank 0's early stop (:class:`negsamp.train.DataParallel`)."""

    def __init__(self, rank: int, world: int, device: torch.device) -> None:
        self.rank, self.world, self.device = rank, world, device

    def rows(self, idx: torch.Tensor) -> tuple[torch.Tensor, float]:
        mine = idx[self.rank :: self.world]
        if mine.numel() == 0:  # a last batch smaller than the workers: join the all-reduce
            return idx[:1], 0.0  # with a zero gradient
        return mine, mine.numel() * self.world / idx.numel()

    def wrap(self, model: Any, loss: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        from ray.train.torch import prepare_model

        ddp = prepare_model(_Loss(model, loss), move_to_device=False)
        return lambda _model, *batch: ddp(*batch)

    def total(self, total: torch.Tensor) -> torch.Tensor:
        import torch.distributed as td

        out = total.detach().clone()
        td.all_reduce(out)  # sum over workers of (weighted mean x batch size)
        return out / self.world

    def agree(self, stopped: bool) -> bool:
        import torch.distributed as td

        flag = torch.tensor([int(stopped)], device=self.device)
        td.broadcast(flag, src=0)
        return bool(flag.item())
