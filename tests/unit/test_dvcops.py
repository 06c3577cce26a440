"""negsamp.dvcops.commit_files: a new data version is one commit of exactly its files (issue #7)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from negsamp.dvcops import commit_files

IDENTITY_VARS = ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME")
IDENTITY_VARS += ("GIT_COMMITTER_EMAIL", "EMAIL")


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with one commit (params.yaml, notes.txt, staged.txt)."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for var in IDENTITY_VARS:
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "negsamp test")
    git(root, "config", "user.email", "test@negsamp.local")
    for name in ("params.yaml", "notes.txt", "staged.txt"):
        (root / name).write_text(f"{name} v1\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "start")
    return root


def test_commits_exactly_the_given_files_and_leaves_other_work_alone(repo: Path) -> None:
    (repo / "params.yaml").write_text("appends: [1]\n")
    (repo / "data").mkdir()
    (repo / "data/0001.parquet.dvc").write_text("outs: []\n")  # a new, untracked file
    (repo / "notes.txt").write_text("someone's unsaved work\n")  # modified, not staged
    (repo / "staged.txt").write_text("someone's staged work\n")
    git(repo, "add", "staged.txt")

    sha = commit_files(repo, ["params.yaml", Path("data/0001.parquet.dvc")], "data: append 1")

    assert sha == git(repo, "rev-parse", "HEAD").strip()
    assert git(repo, "log", "-1", "--format=%s").strip() == "data: append 1"
    changed = git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert sorted(changed) == ["data/0001.parquet.dvc", "params.yaml"]
    status = git(repo, "status", "--porcelain").splitlines()
    assert sorted(status) == [" M notes.txt", "M  staged.txt"]  # as they were


def test_nothing_changed_means_no_commit(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    assert commit_files(repo, ["params.yaml"], "data: nothing") is None
    assert git(repo, "rev-parse", "HEAD") == head


def test_outside_a_git_repository_nothing_is_committed(
    repo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "params.yaml").write_text("x: 1\n")
    assert commit_files(plain, ["params.yaml"], "data: append 1") is None
    assert "not a git repository" in caplog.text


def test_a_missing_git_identity_says_how_to_set_one_and_stages_nothing(repo: Path) -> None:
    git(repo, "config", "--unset", "user.name")
    git(repo, "config", "--unset", "user.email")
    git(repo, "config", "user.useConfigOnly", "true")  # no guessing from the host name
    (repo / "params.yaml").write_text("appends: [1]\n")
    (repo / "new.dvc").write_text("outs: []\n")

    with pytest.raises(RuntimeError) as err:
        commit_files(repo, ["params.yaml", "new.dvc"], "data: append 1")

    msg = str(err.value)
    assert "git has no identity" in msg and "git config user.email" in msg
    assert "git commit -m 'data: append 1' -- params.yaml new.dvc" in msg
    assert git(repo, "diff", "--cached", "--name-only") == ""  # the index is untouched
    assert git(repo, "log", "--format=%s") == "start\n"


def test_a_path_outside_the_repository_is_a_clear_error(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text("x: 1\n")
    with pytest.raises(RuntimeError, match="git add -- .*elsewhere.yaml` failed"):
        commit_files(repo, [outside], "data: append 1")


def test_partial_cache_writes_of_a_killed_dvc_are_dropped_only_under_dvcs_lock(
    tmp_path: Path,
) -> None:
    """Issue #14: `dvc commit` killed mid-write leaves `.<random>.tmp` files in the cache."""
    import fcntl

    from negsamp.dvcops import drop_partial_cache_writes

    obj = tmp_path / ".dvc/cache/files/md5/ab/cdef"
    partial = [obj.with_name(".Xy-1.tmp"), tmp_path / ".dvc/cache/runs/f0/f0aa/.9l5bj.tmp"]
    for p in [obj, *partial]:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    lock = tmp_path / ".dvc/tmp/lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "a") as held:  # a DVC command is running: its files are left alone
        fcntl.flock(held, fcntl.LOCK_EX)
        assert drop_partial_cache_writes(tmp_path) == []
        assert all(p.exists() for p in partial)
    assert sorted(drop_partial_cache_writes(tmp_path)) == sorted(partial)
    assert obj.exists() and not any(p.exists() for p in partial)


def test_up_to_date_is_what_dvc_status_says(repo: Path) -> None:
    """Issue #17: `negsamp run` skips the flow only when every stage is as dvc.lock has it."""
    from negsamp import dvcops

    dvcops.init(repo)
    (repo / "params.yaml").write_text("n: 1\n")
    (repo / "a.txt").write_text("a\n")
    stage = "stages:\n  copy:\n    cmd: cp a.txt b.txt\n    deps: [a.txt]\n"
    (repo / "dvc.yaml").write_text(stage + "    params: [n]\n    outs: [b.txt]\n")
    assert not dvcops.up_to_date(repo)  # no dvc.lock: never recorded
    subprocess.run([*dvcops._dvc(), "repro", "--quiet"], cwd=repo, check=True)
    assert dvcops.up_to_date(repo)
    (repo / "params.yaml").write_text("n: 2\n")
    assert not dvcops.up_to_date(repo)  # a changed param
    (repo / "params.yaml").write_text("n: 1\n")
    (repo / "b.txt").write_text("edited\n")
    assert not dvcops.up_to_date(repo)  # a changed output
    (repo / "b.txt").write_text("a\n")
    assert dvcops.up_to_date(repo)
