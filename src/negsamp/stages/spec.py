"""What a stage reads and writes, declared once: :class:`StageSpec`.

Every stage module holds one ``SPEC = StageSpec(...)``: the params.yaml keys it reads, its
input files, the source code its result depends on, and its outputs. The same declaration

- is what dvc.yaml lists for the stage (``tests/unit/stages/test_stage_specs.py`` compares
  them key for key, and checks that ``code`` covers every negsamp module the stage imports),
- scopes the configuration the stage sees at run time (:meth:`StageSpec.enforce` hands
  ``run`` a :class:`~negsamp.stages.scope.ScopedConfig` that raises on an undeclared key).

Paths are written as dvc.yaml spells them: relative to the project root, and with the
configuration name ``${key}`` (dvc.yaml's ``foreach`` variable) for per-configuration stages.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from negsamp.paths import Paths

F = TypeVar("F", bound=Callable[..., Any])

KEY = "${key}"  # dvc.yaml's foreach variable: the configuration's name in sweep.configs
SHARED = Paths(Path("."))  # shared artifacts (data, splits, candidates)
VARIANT = Paths(Path("."), KEY)  # one configuration's artifacts, as foreach templates
SRC = "src/negsamp"


def rel(*paths: Path | str) -> tuple[str, ...]:
    """Paths as dvc.yaml writes them (POSIX, relative to the project root)."""
    return tuple(p.as_posix() if isinstance(p, Path) else p for p in paths)


def src(*names: str) -> tuple[str, ...]:
    """Source files or folders under src/negsamp: ``src("train.py", "models")``."""
    return tuple(f"{SRC}/{n}" for n in names)


@dataclass(frozen=True)
class StageSpec:
    """One stage's declaration (see the module docstring).

    name: the stage's name in dvc.yaml and :data:`negsamp.stages.ORDER`.
    params: params.yaml keys (dotted; a section means every key under it). A
        per-configuration stage that reads ``sampler``, ``model`` or ``train`` also declares
        ``sweep.configs.${key}``: its configuration's entry overrides those sections.
    deps: input files and folders (data, not code).
    code: source files and folders whose change changes the stage's result.
    outs: every path the stage writes that dvc.yaml tracks (outs, metrics and plots).
    per_variant: runs once per configuration of ``sweep.configs`` (dvc.yaml ``foreach``).
    """

    name: str
    params: tuple[str, ...]
    deps: tuple[str, ...]
    code: tuple[str, ...]
    outs: tuple[str, ...]
    per_variant: bool = False

    def __post_init__(self) -> None:
        for field in ("params", "deps", "code", "outs"):
            values = getattr(self, field)
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"stage {self.name}: {field} lists {dupes} twice")
        templated = [k for k in self.params + self.deps + self.outs if KEY in k]
        if templated and not self.per_variant:
            raise ValueError(f"stage {self.name} runs once, yet declares {templated}")

    def params_for(self, variant: str | None) -> tuple[str, ...]:
        """The declared keys with ``${key}`` made ``variant``'s name."""
        if variant is None:
            return self.params
        return tuple(k.replace(KEY, variant) for k in self.params)

    def declares(self, key: str, variant: str | None = None) -> bool:
        """Whether ``key`` (dotted) is declared, itself or through a section above it."""
        parts = key.split(".")
        return any(parts[: len(d)] == d for d in (k.split(".") for k in self.params_for(variant)))

    def enforce(self, run: F) -> F:
        """Decorate a stage's ``run(cfg, paths, [variant], ...)``: ``cfg`` becomes this stage's
        :class:`~negsamp.stages.scope.ScopedConfig` (of configuration ``variant``, resolved
        first), whichever route calls it: the CLI dvc.yaml runs, the Prefect flow, Python."""
        from negsamp import engine
        from negsamp.stages.scope import ScopedConfig, scope
        from negsamp.threads import set_threads

        sig = inspect.signature(run)

        @functools.wraps(run)
        def scoped(*args: Any, **kwargs: Any) -> Any:
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            variant = bound.arguments.get("variant") if self.per_variant else None
            full = bound.arguments["cfg"]
            if not isinstance(full, ScopedConfig):  # base.threads, base.engine and ray never
                set_threads(full.base.threads)  # change a result: runtime settings, not
                engine.activate(full)  # declared params
            bound.arguments["cfg"] = scope(full, self, variant)
            return run(*bound.args, **bound.kwargs)

        scoped.spec = self  # type: ignore[attr-defined]
        return scoped  # type: ignore[return-value]
