"""Atomic artifact writing and content hashing.

Every artifact is written to a temporary file in the destination folder and then
renamed over the target, so a crash never leaves a half-written file that looks
valid. Hashes are the plain md5 of the file bytes, which is what DVC records in
dvc.lock for a file output, so MLflow tags and DVC lineage agree.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; give the artifact the mode a plain open() would (0666 & ~umask)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except OSError as err:
        if err.errno not in _FULL:
            raise
        raise DiskFull(_full_message(path, err)) from None
    finally:
        tmp_path.unlink(missing_ok=True)


_FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFull(RuntimeError):
    """An artifact could not be written for lack of space; nothing half-written was left."""


def _full_message(path: Path, err: OSError) -> str:
    try:
        free = f"{shutil.disk_usage(path.parent).free / 2**20:.1f} MiB free there"
    except OSError:
        free = "free space unknown"
    kept = "the previous version is unchanged" if path.exists() else "nothing was written"
    return (
        f"no space left on the device while writing {path} ({os.strerror(err.errno)}, "
        f"{free}): {kept}; free some space (or move the project to a larger disk) and rerun"
    )


def atomic_write(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write(
        path, (json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n").encode()
    )


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_parquet(path: str | Path, df: pl.DataFrame) -> None:
    """Deterministic zstd Parquet (no timestamps in metadata: same frame, same bytes)."""
    with atomic_path(path) as tmp:
        df.write_parquet(tmp, compression="zstd", compression_level=3, statistics=True)


def md5_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
