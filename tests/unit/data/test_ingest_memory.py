"""Issue #16: a raw log larger than the process's memory is checked, aggregated and encoded.

The child process's data segment is capped with ``RLIMIT_DATA`` below the size of the
Parquet log it ingests. ``RLIMIT_DATA`` (private writable memory: heap and anonymous
maps, what a loaded log occupies) is the limit that fits: ``RLIMIT_AS`` also counts
reserved address space and the file's read-only maps (measured: polars plus negsamp's
config reserve ~1 GiB of address space before reading a byte, streaming peaks near
2.2 GiB of it), so an address-space cap above that would need a log of several GiB.
Measured on the 640 MiB log below (polars 2.1, one polars thread): the streaming path
peaks at ~420 MiB of data segment, loading the log whole needs ~1.2 GiB, so the cap sits
at 600 MiB, below the file's size; the control shows the whole-log load fails under it.
The child runs exactly what the ingest stage composes (scan + checks, to_implicit, encode)
without the stage module, whose thread setting imports torch (~200 MiB more).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CAP_MB = 600
ROWS, USERS, ITEMS = 20_000_000, 1_000, 100

CHILD = """
import resource, sys
cap = {cap} << 20
resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
from negsamp.config import DataCfg
from negsamp.data.encode import encode, to_implicit
from negsamp.data.loaders import load_raw, scan_raw_info
data = DataCfg(source="parquet", path=sys.argv[1])
raw = load_raw(data) if sys.argv[2] == "whole" else scan_raw_info(data)[0]
interactions, users, items = encode(to_implicit(raw, None))
print("RESULT", interactions.height, users.height, items.height, interactions["count"].sum())
"""


def _raw_log(path: Path) -> None:
    """ROWS events in parts, stored plain (no dictionary, no compression): the file on disk
    is as large as the log in memory."""
    rng = np.random.default_rng(0)
    schema = pa.schema(
        [
            ("user", pa.int64()),
            ("item", pa.int64()),
            ("rating", pa.float64()),
            ("timestamp", pa.int64()),
        ]
    )
    with pq.ParquetWriter(path, schema, compression="none", use_dictionary=False) as out:
        for _ in range(ROWS // 2_000_000):
            m = 2_000_000
            part = [
                rng.integers(0, USERS, m),
                rng.integers(0, ITEMS, m),
                rng.random(m) * 5,
                rng.integers(10**9, 2 * 10**9, m),
            ]
            out.write_table(pa.table(part, schema=schema), row_group_size=1 << 17)


def _ingest(path: Path, how: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POLARS_MAX_THREADS": "1"}
    code = CHILD.format(cap=CAP_MB)
    return subprocess.run(
        [sys.executable, "-c", code, str(path), how], capture_output=True, text=True, env=env
    )


def test_a_log_larger_than_the_memory_cap_is_ingested_and_a_whole_load_is_not(
    tmp_path: Path,
) -> None:
    path = tmp_path / "raw.parquet"
    _raw_log(path)
    assert path.stat().st_size > CAP_MB << 20
    streamed = _ingest(path, "streamed")
    assert streamed.returncode == 0, streamed.stderr[-2000:]
    result = next(x for x in streamed.stdout.splitlines() if x.startswith("RESULT"))
    assert result.split()[1:] == [str(USERS * ITEMS), str(USERS), str(ITEMS), str(ROWS)]
    whole = _ingest(path, "whole")  # the control: the same log loaded whole, same cap
    assert whole.returncode != 0
    assert "memory allocation" in whole.stderr or "MemoryError" in whole.stderr, whole.stderr[-500:]
