"""CPU threads: how many torch may use (``base.threads``), and a trainer that stays fast
when another process competes for the cores.

``base.threads: null`` means the cores this process may run on (its CPU affinity, which
a container or ``taskset`` narrows), not the machine's count. Every stage sets torch's
intra-op threads from it before it runs (:meth:`negsamp.stages.spec.StageSpec.enforce`).
The thread count never changes a result: a CPU run gives the same bytes at any count
(tests/unit/test_threads.py trains every registered model at 1 and 2 threads).

Several configurations trained at once in threads (the Prefect flow's fan-out,
``sweep.concurrency``; ``tune --jobs``) share the count: :func:`shared` divides it among
them, so two trainings on 2 cores take 1 thread each instead of 2 each.

Why a governor: torch's OpenMP workers spin at each barrier. With one other CPU-bound
process on a 2-core machine, a 2-thread mini-batch waits for whichever worker the
scheduler has paused, and an epoch of BPR was measured 5x slower (issue #17) while the
1-thread epoch barely moved. :class:`ThreadGovernor` times a few batches at the full
count and at 1 thread at the start of every epoch and runs the rest at the faster.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def available_cores() -> int:
    """Cores this process may run on: its affinity mask (the CPU count where there is none),
    capped by ``OMP_NUM_THREADS`` where that is set: Ray sets it to the CPUs a task or
    worker reserved, so two tasks on two CPUs take one thread each (``base.engine: ray``)."""
    if hasattr(os, "sched_getaffinity"):
        n = max(1, len(os.sched_getaffinity(0)))
    else:
        n = max(1, os.cpu_count() or 1)
    cap = os.environ.get("OMP_NUM_THREADS", "")
    return min(n, int(cap)) if cap.isdigit() and int(cap) >= 1 else n


def resolve_threads(threads: int | None) -> int:
    """``base.threads``: None -> :func:`available_cores`; else the value (>= 1)."""
    return available_cores() if threads is None else int(threads)


_share = 1  # trainings running at once in threads of this process (see shared)
_lock = threading.Lock()


@contextmanager
def shared(k: int) -> Iterator[None]:
    """While ``k`` configurations run at once in threads of this process (the Prefect
    flow's fan-out, ``tune --jobs``): torch's count is process-wide, so each stage sets
    ``base.threads // k`` threads (at least 1) instead of oversubscribing the cores, and
    the trainer's governor stays off (it would change the others' count mid-run)."""
    global _share
    with _lock:
        before, _share = _share, max(1, int(k))
    try:
        yield
    finally:
        with _lock:
            _share = before


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads from ``base.threads`` (divided among the trainings
    :func:`shared` says run at once); returns the count set."""
    n = max(1, resolve_threads(threads) // _share)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


class ThreadGovernor:
    """Picks whichever of ``threads`` and 1 runs a CPU mini-batch faster, re-checked often.

    Call :meth:`start_epoch`, then :meth:`tick` before every batch, and :meth:`finish`
    after the epoch's last batch (the count goes back to ``threads``: validation and the
    stages after training run at the configured count). In a probing epoch (the first and
    every ``every``-th after it) the first ``2 * probe`` batches alternate ``threads`` and
    1 (alternating, so a change of load hits both alike); the rest of that epoch, and the
    epochs up to the next probe, run at the count whose median batch time was lower (the
    first batch at each count is not timed: thread pools wake up). A no-op with one thread,
    off the CPU, or inside :func:`shared` with k > 1. ``choices`` records each probe's pick.
    """

    def __init__(self, threads: int, device: torch.device, probe: int = 3, every: int = 4) -> None:
        self.threads = int(threads)
        # torch's count is process-wide: a governor in one of several trainings at once
        # (inside shared(k > 1)) would change the others' count mid-run
        self.active = device.type == "cpu" and self.threads > 1 and _share == 1
        self.probe, self.every = probe, every
        self.choices: list[int] = []
        self._chosen = self.threads
        self._times: dict[int, list[float]] = {}
        self._epoch = self._batch = 0
        self._probing = False
        self._last = 0.0
        self._current = self.threads

    def start_epoch(self) -> None:
        self._probing = self.active and self._epoch % self.every == 0
        self._epoch += 1
        self._times = {self.threads: [], 1: []}
        self._batch = 0
        self._use(self.threads if self._probing else self._chosen)
        self._last = time.perf_counter()

    def _use(self, n: int) -> None:
        if self.active and torch.get_num_threads() != n:
            torch.set_num_threads(n)
        self._current = n

    def tick(self) -> None:
        """Before each batch: time the previous one, and switch the count when due."""
        if not self._probing:
            return
        now = time.perf_counter()
        b, end = self._batch, 2 * self.probe
        if 2 <= b <= end:  # batch b - 1 ran at self._current, not its count's first
            self._times[self._current].append(now - self._last)
        if b < end:
            self._use(self.threads if b % 2 == 0 else 1)
        elif b == end:
            multi, single = self._times[self.threads], self._times[1]
            faster = statistics.median(multi) <= statistics.median(single)
            self._chosen = self.threads if faster else 1
            self.choices.append(self._chosen)
            self._use(self._chosen)
            self._probing = False
        self._batch += 1
        self._last = time.perf_counter()

    def finish(self) -> None:
        """After an epoch's batches: back to the configured count."""
        self._probing = False
        self._use(self.threads)
