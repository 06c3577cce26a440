"""Issue #12: every route a user has to switch a plug-in gives the same validated configuration.

The routes: ``negsamp <command> --set`` (the CLI writes params.yaml), ``dvc exp run -S`` (DVC
writes params.yaml itself), and a ``sweep.configs`` entry (resolved by ``Config.variant``).
For every registered sampler and every model, the three give one configuration, and a tiny
end-to-end run succeeds with each model and each sampler at least once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from negsamp import config
from negsamp.config import ModelSection, SamplerSection
from tests.integration.conftest import make_project, sh

pytestmark = pytest.mark.slow

NEGSAMP = str(Path(sys.executable).with_name("negsamp"))
SAMPLERS = sorted(SamplerSection.RESOLVED)
MODELS = sorted(ModelSection.RESOLVED)
SWITCHES = [("sampler", s) for s in SAMPLERS] + [("model", m) for m in MODELS]
# each plug-in keeps its own non-default settings through every route
OWN = {"sampler.popularity.alpha": 0.5, "sampler.hard.k": 2, "model.ials.iterations": 2}


def _id(switch: tuple[str, str]) -> str:
    return f"{switch[0]}.name={switch[1]}"


def _comparable(cfg: config.Config) -> dict:
    """The configuration without the sweep section (a variant is a sweep of itself)."""
    out = config.dump(cfg)
    out.pop("sweep")
    return out


@pytest.fixture(scope="module")
def routes_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_project(tmp_path_factory.mktemp("routes") / "proj")
    config.write_overrides(root / "params.yaml", [f"{k}={v}" for k, v in OWN.items()])
    sh(root, "git", "commit", "-qam", "own settings of three plug-ins")
    sh(root, "dvc", "repro", "synthesize")  # later `dvc exp run ... synthesize` has nothing to do
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "synthetic data")
    return root


@pytest.mark.parametrize("switch", SWITCHES, ids=_id)
def test_switch_gives_one_configuration_on_every_route(
    routes_project: Path, switch: tuple[str, str]
) -> None:
    root, (section, name) = routes_project, switch
    key = f"{section}.name={name}"
    params = root / "params.yaml"
    try:
        # 1. the CLI: --set on a real command writes params.yaml through the one override path
        sh(root, NEGSAMP, "stage", "synthesize", "--set", key)
        by_cli = config.load(params)
        sh(root, "git", "checkout", "-q", "--", "params.yaml")
        # 2. DVC: `dvc exp run -S` edits params.yaml itself, then the stage reads it
        sh(root, "dvc", "exp", "run", "-q", "-S", key, "synthesize")
        by_dvc = config.load(params)
        sh(root, "git", "checkout", "-q", "--", "params.yaml")
        # 3. a sweep.configs entry, resolved by the flow and the per-configuration stages
        patch = {section: {"name": name}}
        swept = config.load(params, [f"sweep.configs={json.dumps({'x': patch})}"]).variant("x")
    finally:
        sh(root, "git", "checkout", "-q", "--", "params.yaml")
    assert _comparable(by_cli) == _comparable(by_dvc) == _comparable(swept)
    plugin = getattr(by_cli, section)
    assert plugin.name == name and plugin.active.name == name
    # every plug-in kept its own settings, whichever runs
    for dotted, value in OWN.items():
        node: object = by_cli
        for part in dotted.split("."):
            node = getattr(node, part)
        assert node == value, dotted


def test_every_sampler_with_every_model_is_one_configuration_or_one_refusal(
    routes_project: Path, tmp_path: Path
) -> None:
    """The whole matrix, in process: the function every command's --set goes through
    (``negsamp.cli.common.configure``, which writes params.yaml) and a sweep.configs entry
    give the same configuration for each (sampler, model) pair, or the same one-sentence
    refusal for a pair that cannot work (a closed-form model with a batch-side sampler)."""
    from negsamp.cli.common import configure

    base = (routes_project / "params.yaml").read_text()
    params = tmp_path / "params.yaml"
    refused = 0
    for sampler in SAMPLERS:
        for model in MODELS:
            params.write_text(base)
            keys = [f"sampler.name={sampler}", f"model.name={model}"]
            patch = {"sampler": {"name": sampler}, "model": {"name": model}}
            entry = f"sweep.configs={json.dumps({'x': patch})}"
            why = _refusal(sampler, model)
            if why is not None:
                with pytest.raises(config.ConfigError, match=why):
                    configure(params, keys)
                assert params.read_text() == base  # nothing written
                with pytest.raises(config.ConfigError, match=why):
                    config.load(params, [entry])
                refused += 1
                continue
            by_cli = configure(params, keys)
            assert _comparable(config.load(params)) == _comparable(by_cli)  # what was written
            params.write_text(base)
            swept = config.load(params, [entry]).variant("x")
            assert _comparable(swept) == _comparable(by_cli), (sampler, model)
            assert (by_cli.sampler.active.name, by_cli.model.active.name) == (sampler, model)
    # ials with in_batch, hard, mixed; sasrec and gru4rec with every sampler but three
    assert refused == 3 + 2 * (len(SAMPLERS) - len(SEQUENTIAL_SAMPLERS))


# what a sequential model draws per position while it trains (issue #19)
SEQUENTIAL_SAMPLERS = {"uniform", "popularity", "in_batch"}


def _refusal(sampler: str, model: str) -> str | None:
    """The refusal (a regex of its message) of a pair that cannot work, else None."""
    if model == "ials" and SamplerSection.RESOLVED[sampler]().side == "batch":
        return "cannot serve it"
    if model in ("sasrec", "gru4rec") and sampler not in SEQUENTIAL_SAMPLERS:
        return "draws its negatives per position while it trains"
    return None


def test_a_disallowed_pair_is_refused_on_every_route(routes_project: Path) -> None:
    root = routes_project
    before = (root / "params.yaml").read_text()
    pair = ["--set", "model.name=ials", "--set", "sampler.name=in_batch"]
    res = sh(root, NEGSAMP, "run", *pair, check=False)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "batch-side sampler 'in_batch' cannot serve it" in res.stderr
    assert (root / "params.yaml").read_text() == before  # nothing half-written
    patch = {"model": {"name": "ials"}, "sampler": {"name": "in_batch"}}
    with pytest.raises(config.ConfigError, match="cannot serve it"):
        config.load(root / "params.yaml", [f"sweep.configs={json.dumps({'x': patch})}"])
    # --force: the stage's command runs (and refuses) although its own params did not change
    res = sh(root, "dvc", "exp", "run", "-f", "-S", "model.name=ials", "-S", "sampler.name=in_batch",
             "synthesize", check=False)  # fmt: skip
    sh(root, "git", "checkout", "-q", "--", "params.yaml")
    assert res.returncode != 0 and "cannot serve it" in res.stdout + res.stderr


# every model and every sampler end to end at least once: a sweep of tiny configurations
E2E = {
    "uniform-bpr": {},
    "pop-lmf": {"sampler": {"name": "popularity"}, "model": {"name": "lmf"}},
    "strat-gmf": {"sampler": {"name": "stratified"}, "model": {"name": "gmf"}},
    "inbatch-mlp": {"sampler": {"name": "in_batch"}, "model": {"name": "mlp"}},
    "hard-neumf": {"sampler": {"name": "hard"}, "model": {"name": "neumf"}},
    "mixed-bpr": {"sampler": {"name": "mixed", "mixed": {"max_item_share": 0.2}}},
    "ials": {"model": {"name": "ials"}},
    # item attributes (issue #20): data.item_features, a CSV the test writes, for the sweep
    "attr-lmf": {"sampler": {"name": "same_attribute"}, "model": {"name": "lmf"}},
    "genre-bpr": {"sampler": {"name": "stratified", "stratified": {"by": "attribute"}}},
    # sequential models (issue #19): per-position negatives drawn while training
    "sasrec": {"model": {"name": "sasrec"}},
    "gru4rec": {"model": {"name": "gru4rec"}},
}


def test_every_model_and_sampler_runs_end_to_end(tmp_path: Path) -> None:
    tiny = {
        "data": {"synthetic": {"n_users": 200, "n_items": 100, "n_interactions": 3000}},
        "train": {"epochs": 1},
        "evaluate": {"bootstrap": 20},
    }
    root = make_project(tmp_path / "proj", tiny)
    env_uri = f"sqlite:///{root / 'mlflow.db'}"
    covered = {("sampler", "uniform"), ("model", "bpr")}
    for patch in E2E.values():
        covered |= {(s, p["name"]) for s, p in patch.items() if "name" in p}
    assert covered >= set(SWITCHES) - {("sampler", "teacher_hard")}
    grid = f"sweep.configs={json.dumps(E2E)}"
    genres = root / "genres.csv"  # every synthetic item id (1..100) in one of five genres
    genres.write_text("item,genre\n" + "".join(f"{i},g{i % 5}\n" for i in range(1, 101)))
    features = ["--set", "data.item_features.source=csv", "--set", "data.item_features.path="
                f"{genres}", "--set", "data.item_features.attributes=[genre]"]  # fmt: skip
    res = sh(root, NEGSAMP, "sweep", "--set", grid, *features, "--no-record",
             env={"MLFLOW_TRACKING_URI": env_uri})  # fmt: skip
    assert "registered negsamp version 1" in res.stdout, res.stdout
    for name in E2E:
        metrics = json.loads((root / "data/metrics" / name / "metrics.json").read_text())
        assert 0.0 <= metrics["sampled_ndcg_10"] <= 1.0, name
    # teacher_hard mines the registered champion: through `negsamp run --set`
    res = sh(root, NEGSAMP, "run", "--set", "sweep.configs={default: {}}",
             "--set", "sampler.name=teacher_hard", "--set", "model.name=gmf", "--no-record",
             env={"MLFLOW_TRACKING_URI": env_uri})  # fmt: skip
    assert "registered negsamp version 2" in res.stdout, res.stdout
    manifest = json.loads((root / "data/pools/default/train_pool.manifest.json").read_text())
    assert manifest["sampler"]["name"] == "teacher_hard"
