"""The CLI as users run it: from any directory given --params, --set on every command (#12)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

NEGSAMP = str(Path(sys.executable).with_name("negsamp"))
TINY = {"data": {"synthetic": {"n_users": 20, "n_items": 10, "n_interactions": 200}}}


def _negsamp(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([NEGSAMP, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_a_stage_runs_from_another_directory_into_the_params_folder(tmp_path: Path) -> None:
    proj, elsewhere = tmp_path / "proj", tmp_path / "elsewhere"
    proj.mkdir()
    elsewhere.mkdir()
    params = proj / "params.yaml"
    params.write_text(yaml.safe_dump(TINY))
    res = _negsamp(
        elsewhere, "stage", "synthesize", "--params", str(params), "--set", "base.seed=7"
    )
    assert res.returncode == 0, res.stderr
    assert (proj / "data/raw/synthetic.parquet").is_file()
    assert not (elsewhere / "data").exists() and not (elsewhere / ".prefect").exists()
    assert yaml.safe_load(params.read_text())["base"]["seed"] == 7  # --set is written


def test_show_applies_set_without_writing(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(TINY))
    before = params.read_text()
    res = _negsamp(tmp_path, "show", "--set", "model.name=ials", "--set", "model.ials.reg=2")
    assert res.returncode == 0, res.stderr
    shown = json.loads(res.stdout)
    assert shown["model"]["name"] == "ials" and shown["model"]["ials"]["reg"] == 2
    assert params.read_text() == before


def test_a_wrong_override_is_one_sentence_without_traceback(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(TINY))
    res = _negsamp(tmp_path, "stage", "synthesize", "--set", "model.factors=8")
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "write model.bpr.factors" in res.stderr
    assert not (tmp_path / "data").exists()


def test_flow_commands_join_through_the_entry_point() -> None:
    res = _negsamp(Path.cwd(), "--help")
    assert res.returncode == 0
    listed = set(re.findall(r"^│ ([a-z-]+) ", res.stdout, flags=re.M))  # rich's command table
    assert {"run", "sweep", "drift", "demo-drift", "stage", "show", "registry"} <= listed


def test_help_is_for_users_every_stage_says_what_it_does_and_version_prints(
    tmp_path: Path,
) -> None:
    from negsamp import __version__
    from negsamp.cli.pipeline import STAGE_HELP
    from negsamp.stages import ORDER

    assert set(STAGE_HELP) == set(ORDER)
    env_cols = {"COLUMNS": "100"}
    run = lambda *a: subprocess.run(  # noqa: E731
        [NEGSAMP, *a], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, **env_cols},
    )  # fmt: skip
    top = run("--help").stdout
    assert "``" not in top and "negsamp run" in top  # no reST markup meant for developers
    assert "<bool>" not in run("run", "--help").stdout  # flags carry no type label
    stages = run("stage", "--help").stdout
    assert "Run the `" not in stages and "Great Expectations suite" in stages
    assert run("--version").stdout.strip() == f"negsamp {__version__}"


def test_help_paragraphs_wrap_at_the_terminal_not_at_the_source_lines() -> None:
    """Issue #15: typer kept a docstring's line breaks and wrapped again at 80 columns, so
    every paragraph after the first came out as alternating long and half-empty lines."""
    from typer.testing import CliRunner

    from negsamp.cli import app

    runner = CliRunner()
    for command in ("sweep", "tune", "serve", "simulate", "registry"):
        out = runner.invoke(app, [command, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
        assert out.exit_code == 0, out.output
        text = out.output.split("╭")[0]  # the description, above the option panels
        lines = [ln.strip() for ln in text.splitlines()]
        for line, nxt in zip(lines, lines[1:], strict=False):
            if line and nxt and not nxt.startswith(("-", "*")):
                # a line ends early only where the next word would not have fit
                assert len(line) + 1 + len(nxt.split()[0]) > 76, (command, line, nxt)
