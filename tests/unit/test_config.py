"""The typed config: defaults mirror params.yaml, unknown keys and bad values are rejected."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from negsamp import config
from negsamp.config import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_params_yaml_is_valid_and_every_key_is_commented() -> None:
    cfg = config.load(REPO / "params.yaml")
    assert cfg.sampler.name == "uniform" and cfg.model.name == "bpr"
    for line in (REPO / "params.yaml").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and ":" in line:
            assert "#" in line, f"params.yaml key without a comment: {line!r}"


def test_unknown_key_is_rejected_with_its_path(tmp_path: Path) -> None:
    p = tmp_path / "params.yaml"
    p.write_text("sampler:\n  name: uniform\n  n_negs: 4\n")
    with pytest.raises(ConfigError, match=r"sampler\.n_negs: unknown key"):
        config.load(p)


def test_unknown_sampler_name_lists_choices(tmp_path: Path) -> None:
    p = tmp_path / "params.yaml"
    p.write_text("sampler:\n  name: magic\n")
    with pytest.raises(ConfigError, match="uniform.*popularity"):
        config.load(p)


def test_overrides_are_typed_and_validated(tmp_path: Path) -> None:
    p = tmp_path / "params.yaml"
    p.write_text("sampler:\n  name: uniform\n")
    cfg = config.load(
        p, ["sampler.name=popularity", "sampler.popularity.alpha=0.5", "train.epochs=3"]
    )
    assert cfg.sampler.active.alpha == 0.5 and cfg.train.epochs == 3
    with pytest.raises(ConfigError, match="alpha"):
        config.load(p, ["sampler.name=popularity", "sampler.popularity.alpha=2"])
    # the old flat layout is refused with the key to write instead
    with pytest.raises(ConfigError, match=r"write sampler\.popularity\.alpha"):
        config.load(p, ["sampler.name=popularity", "sampler.alpha=0.5"])


def test_registry_metric_must_be_computed(tmp_path: Path) -> None:
    p = tmp_path / "params.yaml"
    p.write_text("registry:\n  metric: sampled_hr_7\n")
    with pytest.raises(ConfigError, match="sampled_hr_7"):
        config.load(p)


def test_write_overrides_keeps_comments_and_refuses_bad_values(tmp_path: Path) -> None:
    p = tmp_path / "params.yaml"
    p.write_text((REPO / "params.yaml").read_text())
    changed = config.write_overrides(p, ["sampler.n_neg=8", "base.seed=42"])
    assert changed == ["sampler.n_neg=8"]  # the seed already was 42
    text = p.read_text()
    assert "n_neg: 8" in text and "# int >= 1: negatives per training positive" in text
    assert yaml.safe_load(text)["sampler"]["n_neg"] == 8
    before = p.read_text()
    with pytest.raises(ConfigError):
        config.write_overrides(p, ["sampler.n_neg=0"])
    assert p.read_text() == before


def test_variant_switching_plugin_keeps_each_plugins_settings() -> None:
    cfg = config.from_dict(
        {
            "model": {"name": "bpr", "bpr": {"factors": 128}, "lmf": {"factors": 16}},
            "sampler": {"name": "uniform", "n_neg": 8, "hard": {"k": 3}},
            "sweep": {
                "configs": {
                    "lmf": {"model": {"name": "lmf"}},
                    "pop": {"sampler": {"name": "popularity", "popularity": {"alpha": 0.5}}},
                    "hard": {"sampler": {"name": "hard"}},
                }
            },
        }
    )
    lmf = cfg.variant("lmf").model.active
    # lmf runs with its own settings (params.yaml's model.lmf), never bpr's
    assert lmf.name == "lmf" and lmf.loss == config.LMFCfg().loss and lmf.factors == 16
    assert cfg.variant("lmf").model.bpr.factors == 128  # bpr's stay where they are
    pop = cfg.variant("pop").sampler.active
    assert pop.name == "popularity" and pop.alpha == 0.5 and pop.n_neg == 8
    hard = cfg.variant("hard").sampler.active  # hard's k from params.yaml's sampler.hard
    assert hard.name == "hard" and hard.k == 3 and hard.n_neg == 3
    with pytest.raises(ConfigError, match="in_batch"):
        config.from_dict({"sweep": {"configs": {"x": {"sampler": {"name": "nope"}}}}})


def test_params_yaml_lists_every_key_with_its_default() -> None:
    """DVC tracks params.yaml's keys: every key of the tree is there (issue #12)."""
    assert config.dump(config.load(REPO / "params.yaml")) == config.dump(config.Config())


def test_disallowed_pair_is_refused_in_one_sentence() -> None:
    with pytest.raises(ConfigError, match=r"ials .* batch-side sampler 'in_batch'") as err:
        config.from_dict({"model": {"name": "ials"}, "sampler": {"name": "in_batch"}})
    assert len(str(err.value).splitlines()) == 2  # the file, then one sentence


def test_catalog_metric_cannot_require_significance() -> None:
    with pytest.raises(ConfigError, match="per-user metric"):
        config.from_dict({"registry": {"metric": "coverage_10", "require_significance": True}})
    assert config.from_dict({"registry": {"metric": "coverage_10"}}).registry.metric


def test_overrides_one_function_for_every_route() -> None:
    """--set strings and a sweep.configs patch become the same (path, value) pairs."""
    from negsamp.config import overrides as ov

    patch = {"sampler": {"name": "hard", "hard": {"k": 2}}, "model": {}}
    assert ov.from_patch(patch) == [
        ov.parse("sampler.name=hard"),
        ov.parse("sampler.hard.k=2"),
    ]
    doc: dict = {}
    ov.apply(doc, ov.from_patch(patch))
    assert doc == {"sampler": {"name": "hard", "hard": {"k": 2}}}
    with pytest.raises(ConfigError, match="not a section"):
        ov.apply({"sampler": {"n_neg": 4}}, [ov.parse("sampler.n_neg.x=1")])


MD5 = "0" * 32
SYNTHETIC = {"source": "synthetic", "path": "data/raw/synthetic.parquet"}


def _appended(**data: object) -> dict:
    """A document whose data.appends holds two batches appended to the synthetic log."""
    appends = [
        {"path": f"data/raw/appends/000{i}.parquet", "md5": MD5, "base": SYNTHETIC} for i in (1, 2)
    ]
    return {"data": {"appends": appends, **data}}


@pytest.mark.parametrize(
    "change",
    [{"source": "movielens-100k", "path": "data/raw/ml-100k"}, {"path": "data/raw/other.parquet"}],
)
def test_appends_of_another_source_or_path_are_refused_in_one_sentence_issue_13(
    change: dict,
) -> None:
    """The README's MovieLens command after the old demo-drift: the synthetic batches would be
    ingested with MovieLens. Refused, naming the keys and both ways out."""
    with pytest.raises(ConfigError) as err:
        config.from_dict(_appended(**change))
    msg = str(err.value)
    assert len(msg.splitlines()) == 2  # the file, then one sentence
    assert (
        "data.appends[0], data.appends[1] were appended to synthetic data/raw/synthetic.parquet"
        in msg
    )
    assert "negsamp ingest --clear-appends" in msg and "--set data.appends=[]" in msg


def test_appends_are_cleared_on_purpose_by_the_override_the_message_names_issue_13(
    tmp_path: Path,
) -> None:
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump(_appended()))
    assert len(config.load(p).data.appends) == 2  # the source they were appended to: valid
    cfg = config.load(p, ["data.source=movielens-100k", "data.path=u.data", "data.appends=[]"])
    assert cfg.data.appends == ()


def test_appends_without_a_recorded_base_stay_valid_issue_13() -> None:
    """Entries written before ``base`` was recorded cannot be told apart: accepted (ingest logs
    a warning naming them), so existing projects keep loading."""
    old = {"path": "data/raw/appends/0001.parquet", "md5": MD5}
    cfg = config.from_dict({"data": {"source": "csv", "path": "log.csv", "appends": [old]}})
    assert cfg.data.appends[0].base is None


def test_a_write_keeps_null_comments_and_order_byte_for_byte_elsewhere(tmp_path) -> None:
    """Issue #15: every --set rewrote each ``null`` as an empty value. Setting a key and
    setting it back gives the file back byte for byte; a null written is written ``null``."""
    from negsamp.config import update

    original = Path("params.yaml").read_bytes()
    params = tmp_path / "params.yaml"
    params.write_bytes(original)
    update(params, ["sampler.n_neg=8"])
    changed = [
        (a, b)
        for a, b in zip(
            original.decode().splitlines(), params.read_text().splitlines(), strict=True
        )
        if a != b
    ]
    assert len(changed) == 1 and "n_neg: 8" in changed[0][1], changed
    update(params, ["sampler.n_neg=4"])
    assert params.read_bytes() == original
    update(params, ["data.rating_threshold=3.5"])
    update(params, ["data.rating_threshold=null"])
    assert params.read_bytes() == original


def test_timestamp_bounds_accept_yaml_dates_issue_14(tmp_path: Path) -> None:
    """`--set validate.min_timestamp=1970-01-01` is read by YAML as a date: accepted as ISO."""
    p = tmp_path / "params.yaml"
    p.write_text("validate:\n  max_timestamp: 2200-01-01\n")
    cfg = config.load(p, ["validate.min_timestamp=1970-01-01"])
    assert (cfg.validate_.min_timestamp, cfg.validate_.max_timestamp) == (
        "1970-01-01",
        "2200-01-01",
    )
    written = tmp_path / "written.yaml"
    written.write_text((REPO / "params.yaml").read_text())
    config.write_overrides(written, ["validate.min_timestamp=1970-01-01"])
    assert config.load(written).validate_.min_timestamp == "1970-01-01"


def test_new_data_and_split_settings_are_checked_issue_14(tmp_path: Path) -> None:
    p = tmp_path / "params.yaml"
    p.write_text("{}\n")
    cfg = config.load(p, ["data.timestamp_format='%d/%m/%Y'", "split.method=random_holdout"])
    assert cfg.data.timestamp_format == "%d/%m/%Y" and cfg.split.method == "random_holdout"
    for bad in ("data.timestamp_format=epoch", "data.weight_aggregate=median", "split.method=x"):
        with pytest.raises(ConfigError, match=bad.split("=")[0].split(".")[-1]):
            config.load(p, [bad])


def test_distributed_training_needs_the_ray_engine_issue_16() -> None:
    with pytest.raises(
        ConfigError, match=r"train\.distributed\.workers=2 .* base\.engine=ray"
    ) as e:
        config.from_dict({"train": {"distributed": {"workers": 2}}})
    assert len(str(e.value).splitlines()) == 2  # the file, then one sentence
    on_ray = {"base": {"engine": "ray"}, "train": {"distributed": {"workers": 2}}}
    assert config.from_dict(on_ray).train.distributed.workers == 2


@pytest.mark.parametrize(
    ("patch", "why"),
    [
        ({"model": {"name": "ials"}}, "closed form"),
        ({"model": {"name": "sasrec"}, "sampler": {"name": "uniform"}}, "per position"),
        ({"sampler": {"name": "in_batch"}}, "whole batch"),
        ({"sampler": {"name": "mixed", "mixed": {"max_item_share": 0.5}}}, "whole epoch"),
        ({"train": {"resume": True}}, "checkpoint"),
    ],
)
def test_distributed_training_refuses_what_a_worker_cannot_split_issue_16(
    patch: dict, why: str
) -> None:
    doc = {"base": {"engine": "ray"}, "train": {"distributed": {"workers": 2}}}
    for section, values in patch.items():
        doc[section] = {**doc.get(section, {}), **values}
    with pytest.raises(
        ConfigError, match=rf"workers=2 .*{why}.*: set train\.distributed\.workers=1"
    ):
        config.from_dict(doc)
