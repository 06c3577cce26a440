"""Each stage's SPEC is what dvc.yaml says and what its code reads (#12, point 2).

dvc.yaml stays hand-written (its comments, metrics, plots and ``cache: false`` are for
people and DVC's display, not for the stages); these tests fail on any difference between
a stage's SPEC and its dvc.yaml entry, and on code a stage reaches that its SPEC omits.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from negsamp import config
from negsamp.stages import ORDER, PER_VARIANT, module
from negsamp.stages.spec import KEY, StageSpec
from tests.unit.stages.imports import SRC, module_file, reached

REPO = Path(__file__).resolve().parents[3]

# Modules a stage may reach without declaring them (``.*``: the package and everything in
# it): changing them does not change a result.
INFRASTRUCTURE = {
    # the package root holds __version__ and the Python API's lazy re-exports (by name)
    "negsamp": "version string, lazy API names",
    # parsing and validating params.yaml: DVC tracks the values a stage reads (its params),
    # and params.yaml spells every key (test_params_yaml_spells_every_key), so a default in
    # config/ never reaches a stage
    "negsamp.config.*": "parsing and validation; the values are tracked as params",
    # where artifacts live: dvc.yaml spells each path, and test_dvc_yaml_matches_spec compares
    "negsamp.paths": "artifact locations, compared with dvc.yaml below",
    # how bytes reach disk (temp file + rename, JSON/Parquet encoding) and md5: the format,
    # not the content of a result
    "negsamp.io": "atomic writes, serialisation, md5",
    # the headless canvas and PNG encoding of a figure; what a plot shows is drawn elsewhere
    "negsamp.figures": "plot canvas, PNG bytes and a lock",
    # the data layer's package re-exports its error type; that type carries messages only
    "negsamp.data": "re-exports DataError",
    "negsamp.data.errors": "an exception type",
    # dispatch: which module a stage name is
    "negsamp.stages": "stage dispatch",
    # fault-injection points (#14): a no-op unless NEGSAMP_FAULT names one, then SIGKILL
    "negsamp.faults": "crash points for the kill harness; never change a result",
    # input checks and readers shared by the stages (require, catalog_size, positives); the
    # walk still follows what each function a stage uses reaches (positives -> interactions)
    "negsamp.stages.common": "input checks and shared readers",
    # torch's CPU thread count (base.threads, #17) and the trainer's governor, which only
    # switches counts for models that give the same bytes at any count (test_threads.py)
    "negsamp.threads": "CPU thread count",
    # base.engine (#16): where work runs; a Ray run has the bytes and metrics of a local one
    # (tests/integration/test_ray_engine.py), so neither is a code dep of a result
    "negsamp.engine": "where work runs",
    "negsamp.cluster": "the Ray package",
    "negsamp.cluster.runtime": "starts or joins the Ray cluster",
    "negsamp.cluster.sampling": "Ray tasks of the same functions; same bytes (test_ray_engine.py)",
    "negsamp.cluster.evaluation": "Ray tasks of the same functions; same bytes",
    # cluster/training.py is not here: DDP changes the weights, so it is the train stage's code
}

SPECS = {name: module(name).SPEC for name in ORDER}


def _dvc_stages() -> dict[str, Any]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def _paths(entries: list[Any] | None) -> list[str]:
    """The paths of dvc.yaml deps/outs/metrics/plots entries (a str or {path: options})."""
    return [e if isinstance(e, str) else next(iter(e)) for e in entries or []]


def _diff(what: str, declared: list[str], written: list[str]) -> list[str]:
    d, w = Counter(declared), Counter(written)
    msgs = []
    if d - w:
        msgs.append(f"{what}: dvc.yaml lacks {sorted(d - w)}")
    if w - d:
        msgs.append(f"{what}: dvc.yaml has {sorted(w - d)}, which the SPEC does not declare")
    return msgs


def test_every_stage_has_a_spec_that_scopes_its_run() -> None:
    assert list(_dvc_stages()) == list(ORDER)
    for name, spec in SPECS.items():
        assert isinstance(spec, StageSpec) and spec.name == name
        assert module(name).run.spec is spec, f"{name}.run is not decorated with @SPEC.enforce"
    assert {n for n, s in SPECS.items() if s.per_variant} == PER_VARIANT


@pytest.mark.parametrize("name", ORDER)
def test_dvc_yaml_matches_spec(name: str) -> None:
    spec, stage = SPECS[name], _dvc_stages()[name]
    if spec.per_variant:
        assert stage.get("foreach") == "${sweep.configs}", f"{name}: foreach over sweep.configs"
        stage = stage["do"]
        assert stage["cmd"] == f"negsamp stage {name} --config {KEY}"
    else:
        assert "foreach" not in stage and stage["cmd"] == f"negsamp stage {name}"
    where = f"stage {name} (SPEC in src/negsamp/stages/{name.replace('-', '_')}.py)"
    problems = _diff("params", list(spec.params), stage.get("params") or [])
    problems += _diff("deps", [*spec.deps, *spec.code], _paths(stage.get("deps")))
    written = [p for f in ("outs", "metrics", "plots") for p in _paths(stage.get(f))]
    problems += _diff("outs, metrics and plots", list(spec.outs), written)
    assert not problems, f"{where}:\n  " + "\n  ".join(problems)


def _keys(doc: Any, prefix: str = "") -> set[str]:
    """Every dotted key of a params document, sections included."""
    out = set()
    for k, v in doc.items():
        out.add(prefix + k)
        if isinstance(v, dict):
            out |= _keys(v, f"{prefix}{k}.")
    return out


def test_params_yaml_spells_every_key() -> None:
    """So a default in src/negsamp/config never decides a value a stage reads."""
    doc = config.read_document(REPO / "params.yaml")
    full = config.dump(config.from_dict(doc))
    full["sweep"]["configs"] = doc["sweep"]["configs"]  # entries are partial overrides
    every = _keys(full)
    assert every <= _keys(doc), f"params.yaml lacks {sorted(every - _keys(doc))}"


@pytest.mark.parametrize("name", ORDER)
def test_declared_params_exist(name: str) -> None:
    doc = config.read_document(REPO / "params.yaml")
    known = _keys(config.dump(config.from_dict(doc)))
    variant = next(iter(doc["sweep"]["configs"]))
    missing = [k for k in SPECS[name].params_for(variant) if k not in known]
    assert not missing, f"stage {name} declares keys params.yaml does not have: {missing}"


@pytest.mark.parametrize("name", sorted(PER_VARIANT))
def test_a_configuration_entry_is_declared_where_it_can_change_what_is_read(name: str) -> None:
    """sweep.configs.<name> overrides sampler, model and train: a per-configuration stage
    reading any of them declares its entry; one reading none of them does not."""
    spec = SPECS[name]
    overridable = tuple(config.VariantCfg.model_fields)
    reads = any(k.split(".")[0] in overridable for k in spec.params)
    assert reads == (f"sweep.configs.{KEY}" in spec.params), name


def _file(module_name: str) -> str:
    return module_file(module_name).relative_to(SRC.parent).as_posix()  # type: ignore[union-attr]


def _under(path: str, entry: str) -> bool:
    return path == entry or path.startswith(entry.rstrip("/") + "/")


def _matches(module_name: str, entry: str) -> bool:
    package = entry.removesuffix(".*")
    return module_name == package or (entry != package and module_name.startswith(package + "."))


def _infrastructure(module_name: str) -> bool:
    return any(_matches(module_name, entry) for entry in INFRASTRUCTURE)


@pytest.mark.parametrize("name", ORDER)
def test_code_deps_cover_what_the_stage_reaches(name: str) -> None:
    """Every negsamp module the stage's run reaches (imports inside functions too) is under
    a declared code dep, except the infrastructure above; every code dep is reached."""
    spec = SPECS[name]
    modules = reached(module(name).__name__)
    files = {m: _file(m) for m in modules if not _infrastructure(m)}
    missing = sorted(f for f in files.values() if not any(_under(f, c) for c in spec.code))
    assert not missing, f"stage {name} reaches {missing}; add them to its SPEC.code"
    unused = [c for c in spec.code if not any(_under(f, c) for f in files.values())]
    assert not unused, f"stage {name} declares code it never reaches: {unused}"


def test_every_infrastructure_entry_is_needed() -> None:
    everything = set().union(*(reached(module(n).__name__) for n in ORDER))
    unused = [e for e in INFRASTRUCTURE if not any(_matches(m, e) for m in everything)]
    assert not unused, f"no stage reaches {unused}: drop them from INFRASTRUCTURE"


def test_the_walk_follows_imports_inside_functions_and_names() -> None:
    # sample-negatives reaches the champion only through common.champion_scorer's
    # function-level import; validate uses common's require/catalog_size, never the champion
    assert "negsamp.champion" in reached("negsamp.stages.sample_negatives")
    assert "negsamp.champion" not in reached("negsamp.stages.validate")
    # ingest's run never calls append_snapshot (`negsamp ingest --append`), which uses dvcops
    assert "negsamp.dvcops" not in reached("negsamp.stages.ingest")
    # plug-ins register on import of their package: every sampler counts for candidates
    assert "negsamp.samplers.stratified" in reached("negsamp.stages.candidates")
