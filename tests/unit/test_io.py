"""Atomic writes when the disk fills up (issue #14, point 8): nothing half-written, one clear
sentence."""

from __future__ import annotations

import errno
from pathlib import Path

import polars as pl
import pytest

from negsamp.io import DiskFull, write_json, write_parquet


def _full_after_some_bytes(self: pl.DataFrame, file: str | Path, **_: object) -> None:
    """A write that runs out of space half-way, as a full disk does."""
    Path(file).write_bytes(b"PAR1" + b"\0" * 100)
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_leaves_the_previous_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "pool" / "train_pool.parquet"
    write_parquet(target, pl.DataFrame({"a": [1, 2]}))
    before = target.read_bytes()
    monkeypatch.setattr(pl.DataFrame, "write_parquet", _full_after_some_bytes)
    with pytest.raises(DiskFull) as got:
        write_parquet(target, pl.DataFrame({"a": [3, 4, 5]}))
    msg = str(got.value)
    assert msg.startswith(f"no space left on the device while writing {target} (")
    assert "MiB free there): the previous version is unchanged; free some space" in msg
    assert msg.count(". ") == 0 and isinstance(got.value, RuntimeError)  # a user error
    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["train_pool.parquet"]


def test_a_full_disk_on_a_first_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: Path, data: bytes) -> int:
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(DiskFull, match=r"\(Disk quota exceeded, .*\): nothing was written;"):
        write_json(tmp_path / "m.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_other_os_errors_pass_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(self: Path, data: bytes) -> int:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "write_bytes", denied)
    with pytest.raises(PermissionError):
        write_json(tmp_path / "m.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []
