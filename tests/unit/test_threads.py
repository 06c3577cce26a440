"""base.threads and the trainer's thread governor (issue #17): the count never changes a
result, and the governor settles on whichever count its probe batches ran faster."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from threading import Thread

import numpy as np
import pytest
import torch

from negsamp import threads
from negsamp import train as trainer
from negsamp.config import TrainCfg
from negsamp.interactions import Interactions
from negsamp.models import registered
from tests.unit.models.helpers import make, uniform_pool


@pytest.fixture(autouse=True)
def restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_null_threads_are_the_cores_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert threads.resolve_threads(None) == expected
    # a Ray task's OMP_NUM_THREADS (its reserved CPUs) caps the count; nonsense is ignored
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.resolve_threads(None) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    assert threads.resolve_threads(None) == expected
    assert threads.resolve_threads(3) == 3
    assert threads.set_threads(1) == 1 and torch.get_num_threads() == 1


def _data() -> Interactions:
    """Big enough that torch splits a batch's kernels across threads (>= 32k elements):
    a user table larger than the batch (its rows are gathered: 2048 x 32 to sum)."""
    rng = np.random.default_rng(0)
    users = rng.integers(0, 4000, 20_000)
    items = rng.integers(0, 300, 20_000)
    return Interactions.from_arrays(users, items, 4000, 300)


INVARIANT = ["bpr", "lmf"]


def test_only_the_models_tested_here_claim_thread_invariance() -> None:
    tiny = Interactions.from_arrays(np.array([0, 1]), np.array([0, 1]), 2, 2)
    claim = [m for m in registered() if getattr(make(m, tiny), "thread_invariant", False)]
    assert claim == INVARIANT


@pytest.mark.parametrize("name", INVARIANT)
def test_the_governor_switching_threads_mid_epoch_gives_the_same_weights(name: str) -> None:
    """Probe batches alternate 2 and 1 threads inside each epoch: same bytes as 1 thread."""
    train = _data()
    pool = uniform_pool(train, 4, 2)
    cfg = TrainCfg(epochs=2, batch_size=2048, patience=0, checkpoint=False)
    states, losses = [], []
    for n, adapt in ((1, False), (2, True)):
        torch.set_num_threads(n)
        model = make(name, train, factors=32)
        hist = trainer.fit(model, pool, cfg, 0, torch.device("cpu"), adapt_threads=adapt)
        states.append(model.state_dict())
        losses.append([h["loss"] for h in hist])
    assert losses[0] == losses[1]  # the reported loss too: its L2 term is an ordered sum
    for key, value in states[0].items():
        assert torch.equal(value, states[1][key]), f"{name}: {key} differs between 1 and 2 threads"


def test_in_batch_switching_threads_mid_epoch_gives_the_same_weights() -> None:
    """Issue #17: in_batch's softmax over distinct users x items (row reductions, a masked
    logsumexp) keeps BPR thread-invariant: the governor's run equals the 1-thread one."""
    from pydantic import TypeAdapter

    from negsamp.config import SamplerCfg

    train = _data()
    pool = trainer.Pool.from_positives(train, torch.device("cpu"))
    sampler = TypeAdapter(SamplerCfg).validate_python({"name": "in_batch"})
    cfg = TrainCfg(epochs=2, batch_size=2048, patience=0, checkpoint=False)
    states, losses = [], []
    for n, adapt in ((1, False), (2, True)):
        torch.set_num_threads(n)
        model = make("bpr", train, factors=32)
        hist = trainer.fit(
            model, pool, cfg, 0, torch.device("cpu"), adapt_threads=adapt, sampler=sampler,
            train=train,
        )  # fmt: skip
        states.append(model.state_dict())
        losses.append([h["loss"] for h in hist])
    assert losses[0] == losses[1]
    for key, value in states[0].items():
        assert torch.equal(value, states[1][key]), f"in_batch: {key} differs at 1 and 2 threads"


class _Clock:
    """A fake perf_counter: each batch costs ``cost[threads]`` seconds."""

    def __init__(self, cost: dict[int, float]) -> None:
        self.now, self.cost = 0.0, cost

    def __call__(self) -> float:
        return self.now

    def batch(self) -> None:
        self.now += self.cost[torch.get_num_threads()]


@pytest.mark.parametrize(("cost", "expected"), [({2: 1.0, 1: 1.5}, 2), ({2: 5.0, 1: 1.0}, 1)])
def test_the_governor_keeps_the_faster_count(
    monkeypatch: pytest.MonkeyPatch, cost: dict[int, float], expected: int
) -> None:
    clock = _Clock(cost)
    monkeypatch.setattr(threads.time, "perf_counter", clock)
    torch.set_num_threads(2)
    gov = threads.ThreadGovernor(2, torch.device("cpu"), probe=3, every=2)
    for epoch in range(4):  # epochs 0 and 2 probe; 1 and 3 keep the pick
        gov.start_epoch()
        used = []
        for _ in range(10):
            gov.tick()
            used.append(torch.get_num_threads())
            clock.batch()
        gov.finish()
        probe = [2, 1, 2, 1, 2, 1] + [expected] * 4
        assert used == (probe if epoch % 2 == 0 else [expected] * 10)
        assert torch.get_num_threads() == 2
    assert gov.choices == [expected, expected]


def test_an_epoch_shorter_than_the_probe_keeps_the_configured_count() -> None:
    torch.set_num_threads(2)
    gov = threads.ThreadGovernor(2, torch.device("cpu"), probe=3)
    gov.start_epoch()
    for _ in range(4):
        gov.tick()
    gov.finish()
    gov.start_epoch()  # not a probing epoch: the pick so far (none) is the configured count
    assert torch.get_num_threads() == 2 and gov.choices == []


def test_trainings_at_once_divide_the_threads_and_keep_the_governor_off() -> None:
    with threads.shared(2):
        assert threads.set_threads(4) == 2 and threads.set_threads(1) == 1
        made: list[threads.ThreadGovernor] = []
        worker = Thread(target=lambda: made.append(threads.ThreadGovernor(2, torch.device("cpu"))))
        worker.start()
        worker.join()
        assert not made[0].active
    assert threads.set_threads(4) == 4 and threads.ThreadGovernor(2, torch.device("cpu")).active


def test_one_thread_or_a_gpu_leaves_the_count_alone() -> None:
    torch.set_num_threads(2)
    for gov in (
        threads.ThreadGovernor(1, torch.device("cpu")),
        threads.ThreadGovernor(2, torch.device("cuda")),
    ):
        gov.start_epoch()
        for _ in range(12):
            gov.tick()
        assert torch.get_num_threads() == 2 and gov.choices == []


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_import_negsamp_makes_openmp_workers_wait_passively(
    given: str | None, expected: str
) -> None:
    """#17: spinning workers slowed 2-thread training ~100x on a loaded machine; an explicit
    OMP_WAIT_POLICY wins."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    code = "import os, negsamp; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == expected, out.stderr
