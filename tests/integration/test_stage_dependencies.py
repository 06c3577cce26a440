"""Stage dependencies that cannot drift (#12): DVC re-runs exactly the stages that read a key.

After one ``dvc repro``, every leaf key of params.yaml is changed in turn to another valid
value and ``dvc status`` must mark stale exactly the stages whose SPEC declares that key
(or a section above it): a missing declaration shows as a stage that stays up to date, a
needless one as an extra stale stage. Then the regression the issue names: changing an
in_batch configuration's ``logq_correction`` makes ``dvc repro`` retrain it, both through
the base section and through its ``sweep.configs`` entry.
"""

from __future__ import annotations

import copy
import json
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from negsamp import config
from negsamp.config import overrides
from negsamp.io import md5_file
from negsamp.models import WEIGHTS_FILE
from negsamp.stages import ORDER, module
from tests.integration.conftest import make_project, sh

pytestmark = pytest.mark.slow

CONFIGS = {"default": {}, "inb": {"sampler": {"name": "in_batch"}}}
FAST = {
    "evaluate": {"bootstrap": 10},
    "registry": {"n_resamples": 100},
    "sweep": {"configs": CONFIGS},
}
# another valid value for strings that are neither a Literal nor free text
STRINGS = {
    "base.device": "cpu",
    "data.timestamp_format": "unix_s",
    "validate.min_timestamp": "1970-01-03",
    "validate.max_timestamp": "2099-01-01",
    "data.synthetic.start": "2025-01-02",
    "train.monitor": "sampled_hr_10",
    "registry.metric": "sampled_hr_10",
    "schedule.cron": "0 4 * * *",
    "schedule.timezone": "Europe/Paris",
}
# keys whose null default has no generic valid alternative
NULLS = {"ray.address": "auto", "ray.object_store_mb": 200}
# keys that are only valid when changed together (both keys' stages are expected stale)
TOGETHER = {
    "sampler.hard.schedule": {"sampler.hard.temperature": 0.5},  # a schedule moves a temperature
    "data.item_features.multi_valued": {"data.item_features.attributes": ["genre"]},
    "sampler.stratified.attribute_shares": {"sampler.stratified.attribute_values": ["g"]},
    "model.neumf.pretrained_gmf": {"model.neumf.pretrained_mlp": "data/models/mlp/model"},
    "model.neumf.pretrained_mlp": {"model.neumf.pretrained_gmf": "data/models/gmf/model"},
}
# keys no valid value of which this project admits, and why (the key's section is declared)
FIXED = {
    # workers > 1 needs base.engine: ray and refuses the in_batch configuration this project
    # compares; train declares the whole train section (tests/integration/test_ray_train.py)
    "train.distributed.workers",
}


def _leaves(doc: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for k, v in doc.items():
        if isinstance(v, dict) and v:
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield prefix + k


def _get(doc: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        doc = doc[part]
    return doc


def _choices(key: str) -> tuple[Any, ...]:
    """The Literal values of ``key``'s field (a sweep entry's keys are its section's)."""
    parts = key.split(".")
    if parts[:2] == ["sweep", "configs"] and len(parts) > 3:
        parts = parts[3:]
    node: Any = config.Config
    for part in parts:
        fields = node.model_fields if isinstance(node, type) and issubclass(node, BaseModel) else {}
        name = next((n for n, f in fields.items() if (f.alias or n) == part), None)
        if name is None:
            return ()
        node = fields[name].annotation
        args = [a for a in typing.get_args(node) if a is not type(None)]
        if isinstance(node, type) or not args:
            continue
        if typing.get_origin(node) is typing.Literal:
            return typing.get_args(node)
        node = next((a for a in args if isinstance(a, type)), node)
    return ()


def _alternatives(key: str, value: Any) -> Iterator[Any]:
    """Candidate new values for ``key``, most natural first (validation picks one)."""
    if isinstance(value, bool):
        yield not value
    elif isinstance(value, int):
        yield from (value + 1, value - 1, value * 2, value + 10)
    elif isinstance(value, float):
        yield from (round(value * 0.5, 6), round(value + 0.05, 6), round(value - 0.05, 6))
    elif value is None:
        if key in NULLS:
            yield NULLS[key]
        yield from (0.5, 2, "data/models/other/model")
    elif isinstance(value, str):
        yield from (c for c in _choices(key) if c != value)
        if key in STRINGS:
            yield STRINGS[key]
        yield value + "-2"
    elif isinstance(value, list) and not value:
        yield [{"path": "data/raw/appends/0001.parquet", "md5": "0" * 32}]
        yield ["genre"]  # item feature columns, attribute values (issue #20)
        yield [1.0]  # attribute shares
    elif isinstance(value, list):
        yield value[::-1]
        yield [x + 1 if isinstance(x, int) else round(x * 0.9, 6) for x in value]
        yield value[:-1]
        yield [*value, value[-1]]
    elif value == {}:
        yield {"train": {"epochs": 3}}


def _change(doc: dict[str, Any], key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(a valid document with ``key`` changed, the changes made)."""
    for alt in _alternatives(key, _get(doc, key)):
        if alt == _get(doc, key):
            continue
        changes = {key: alt, **TOGETHER.get(key, {})}
        new = overrides.apply(
            copy.deepcopy(doc), [(tuple(k.split(".")), v) for k, v in changes.items()]
        )
        try:
            config.from_dict(copy.deepcopy(new))
        except config.ConfigError:
            continue
        return new, changes
    raise AssertionError(f"no valid other value found for {key}: extend _alternatives")


def _declaring(keys: list[str], variants: list[str]) -> set[str]:
    """The DVC stages whose SPEC declares one of ``keys`` (or a section above it)."""
    out = set()
    for name in ORDER:
        spec = module(name).SPEC
        for v in variants if spec.per_variant else [None]:
            if any(spec.declares(k, v) for k in keys):
                out.add(f"{name}@{v}" if v else name)
    return out


def _stale(root: Path) -> set[str]:
    """``dvc status``'s stale stages, in-process (the CLI's code without its start-up)."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:  # names are "<dvc.yaml relative to cwd>:<stage>"
        return {name.rpartition(":")[2] for name in repo.status()}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = make_project(tmp_path_factory.mktemp("deps") / "proj", FAST)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
        mp.setenv("DVC_NO_ANALYTICS", "1")
        # the stages DVC runs are this project's copy of the code under test
        where = sh(root, "python", "-c", "import negsamp; print(negsamp.__file__)").stdout
        assert Path(where.strip()).is_relative_to(root / "src"), where
        sh(root, "dvc", "repro")
        yield root


@pytest.mark.parametrize(
    "stride",
    [
        pytest.param(4, id="every-4th-key"),  # make test: a quarter of the keys, every section
        pytest.param(1, id="every-key", marks=pytest.mark.full),  # make test-full: all of them
    ],
)
def test_dvc_status_marks_exactly_the_stages_that_declare_each_key(
    built: Path, stride: int
) -> None:
    params = built / "params.yaml"
    original = params.read_text()
    doc = yaml.safe_load(original)
    variants = list(doc["sweep"]["configs"])
    assert _stale(built) == set()
    cli = json.loads(sh(built, "dvc", "status", "--json").stdout or "{}")
    assert cli == {}
    wrong = []
    every = list(_leaves(doc))
    sections = {k.split(".")[0]: [] for k in every}  # every stride-th key of each section
    for k in every:
        sections[k.split(".")[0]].append(k)
    keys = [k for ks in sections.values() for k in ks[::stride] if k not in FIXED]
    try:
        for i, key in enumerate(keys):
            new, changes = _change(doc, key)
            params.write_text(yaml.safe_dump(new, sort_keys=False))
            expected = _declaring(list(changes), variants)
            got = _stale(built)
            if i == 0:  # the in-process status is what the CLI says
                assert set(json.loads(sh(built, "dvc", "status", "--json").stdout)) == got
            if got != expected:
                wrong.append(
                    f"{changes}: stale {sorted(got)}; declared by {sorted(expected)} "
                    f"(missing {sorted(expected - got)}, extra {sorted(got - expected)})"
                )
            params.write_text(original)
    finally:
        params.write_text(original)
    assert not wrong, f"{len(wrong)} of {len(keys)} keys:\n" + "\n".join(wrong)
    assert _stale(built) == set()
    assert len(every) > 140  # every leaf of params.yaml, both configurations' entries included
    assert {k.split(".")[0] for k in keys} == {k.split(".")[0] for k in every}


def _weights(root: Path, variant: str) -> str:
    return md5_file(root / "data/models" / variant / "model" / WEIGHTS_FILE)


# make test keeps the mechanism (the every-4th-key status check above, and the 4-configuration
# DVC test: a changed configuration reruns); this end-to-end retrain (96 s) is in make test-full
@pytest.mark.full
def test_changing_logq_correction_of_an_in_batch_configuration_retrains_it(built: Path) -> None:
    """Issue #12: train listed no sampler params, so `dvc repro` kept the old in_batch model."""
    params = built / "params.yaml"
    assert config.load(params).variant("inb").sampler.active.logq_correction is True
    before = {v: _weights(built, v) for v in CONFIGS}

    # the base section: every configuration reads it; only inb's model actually changes
    config.write_overrides(params, ["sampler.in_batch.logq_correction=false"])
    log = sh(built, "dvc", "repro").stdout
    assert "Running stage 'train@inb'" in log
    assert _weights(built, "inb") != before["inb"]
    assert _weights(built, "default") == before["default"]  # uniform ignores it: same bytes
    after_base = _weights(built, "inb")

    # the configuration's own entry: only inb re-runs
    config.write_overrides(params, ["sweep.configs.inb.sampler.in_batch.logq_correction=true"])
    log = sh(built, "dvc", "repro").stdout
    assert "Running stage 'train@inb'" in log
    assert "Running stage 'train@default'" not in log
    assert "Running stage 'sample-negatives@default'" not in log
    assert _weights(built, "inb") != after_base
    assert _weights(built, "inb") == before["inb"]  # logq back on: the first model again
    assert "up to date" in sh(built, "dvc", "repro", "--dry").stdout
