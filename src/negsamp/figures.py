"""Matplotlib figures without a display, drawn one at a time.

Matplotlib is not thread-safe (its mathtext parser and font cache are shared): the
Prefect flow runs configurations in threads, and two plots drawn at once fail with a
pyparsing ParseException. Every plotting entry point is wrapped in :func:`serialized`.
"""

from __future__ import annotations

import functools
import io
import threading
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])
_LOCK = threading.RLock()


def serialized(fn: F) -> F:
    """Run ``fn`` holding the process-wide plotting lock."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def figure(ncols: int = 1, width: float = 9.0, height: float = 4.5) -> tuple[Any, list[Any]]:
    """A Figure on the Agg canvas and its ``ncols`` axes side by side."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, list(fig.subplots(1, ncols, squeeze=False)[0])


def png(fig: Any, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (no timestamp in the metadata: same plot, same bytes)."""
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()
