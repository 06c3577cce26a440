"""A stage's view of the configuration: only the keys its :class:`StageSpec` declares.

:func:`scope` wraps the validated :class:`~negsamp.config.Config` in a read-only
:class:`ScopedConfig`. Reading a declared key (or anything under a declared section) gives
the real value, typed sub-configs included, so pure functions get what they always got;
reading a section some of whose keys are declared gives a nested view; reading anything
else raises :class:`UndeclaredParameter`, naming the key and the stage. DVC re-runs a
stage only when a declared key changes, so an undeclared read is a stale result waiting
to happen: it fails the run instead.

Attributes that are not keys read a whole node: ``cfg.sampler.active`` (and any other
property or method, ``model_dump`` included) needs the whole ``sampler`` section declared;
``cfg.variants`` needs ``sweep.configs``; ``cfg.variant(name)`` needs ``sweep.configs.<name>``
and gives the same view of that configuration. A per-configuration stage sees its
configuration already resolved, so ``cfg.variant(<its own name>)`` is the view itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from negsamp.stages.spec import StageSpec

Key = tuple[str, ...]


class UndeclaredParameter(RuntimeError):
    """A stage read a params.yaml key its SPEC does not declare (a bug in the stage).

    ``key`` is the dotted key, or ``""`` for the whole configuration.
    """

    def __init__(self, stage: str, key: str, declared: tuple[str, ...], why: str = "") -> None:
        self.stage, self.key = stage, key
        module = f"src/negsamp/stages/{stage.replace('-', '_')}.py"
        what = f"{key!r}" if key else "the whole configuration"
        fix = (
            f"Add {key!r} to SPEC.params in {module} and to the stage's params in dvc.yaml"
            if key
            else "Pass the typed sections it needs instead"
        )
        super().__init__(
            f"stage {stage!r} read {what}{why}, which it does not declare "
            f"(declared: {', '.join(declared) or 'nothing'}): DVC would not re-run it when "
            f"that changes. {fix}, or stop reading it"
        )


def _key(name: str, field: Any) -> str:
    """The params.yaml key of a pydantic field (``validate_`` is ``validate``)."""
    return field.alias or name


@dataclass(frozen=True)
class Scope:
    stage: str
    declared: tuple[Key, ...]
    variant: str | None = None  # the configuration already resolved, if any

    def covers(self, path: Key, value: Any) -> bool:
        """Every key at and under ``path`` is declared (a section whose keys all are, counts)."""
        if any(path[: len(d)] == d for d in self.declared):
            return True
        if isinstance(value, BaseModel) and self.opens(path):
            fields = type(value).model_fields
            return all(
                self.covers((*path, _key(n, f)), getattr(value, n)) for n, f in fields.items()
            )
        return False

    def opens(self, path: Key) -> bool:
        """Some key strictly under ``path`` is declared."""
        return any(len(d) > len(path) and d[: len(path)] == path for d in self.declared)

    def undeclared(self, path: Key, why: str = "") -> UndeclaredParameter:
        return UndeclaredParameter(
            self.stage, ".".join(path), tuple(".".join(d) for d in self.declared), why
        )


class ScopedConfig:
    """A read-only view of a configuration node (see the module docstring)."""

    __slots__ = ("_obj", "_path", "_scope")

    def __init__(self, obj: BaseModel, scope: Scope, path: Key = ()) -> None:
        object.__setattr__(self, "_obj", obj)
        object.__setattr__(self, "_scope", scope)
        object.__setattr__(self, "_path", path)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        obj, scope, path = self._obj, self._scope, self._path
        fields = type(obj).model_fields
        if attr in fields:
            key = (*path, _key(attr, fields[attr]))
            value = getattr(obj, attr)
            if scope.covers(key, value):
                return value
            if isinstance(value, BaseModel) and scope.opens(key):
                return ScopedConfig(value, scope, key)
            raise scope.undeclared(key)
        if not path and attr == "variants":
            self._need(("sweep", "configs"), obj.sweep.configs, attr)  # type: ignore[attr-defined]
            return obj.variants  # type: ignore[attr-defined]
        if not path and attr == "variant":
            return self._variant
        if not hasattr(type(obj), attr):
            raise AttributeError(f"{type(obj).__name__} has no attribute {attr!r}")
        self._need(path, obj, attr)
        return getattr(obj, attr)

    def _need(self, path: Key, value: Any, attr: str) -> None:
        """Raise unless all of ``path`` is declared: ``attr`` reads all of it."""
        if not self._scope.covers(path, value):
            raise self._scope.undeclared(path, f" (through .{attr}, which reads all of it)")

    def _variant(self, name: str) -> Any:
        scope, obj = self._scope, self._obj
        if name == scope.variant:
            return self
        key = ("sweep", "configs", name)
        if not scope.covers(key, None):
            raise scope.undeclared(key, f" (through .variant({name!r}))")
        return ScopedConfig(obj.variant(name), replace(scope, variant=name))  # type: ignore[attr-defined]

    def __setattr__(self, attr: str, value: Any) -> None:
        raise AttributeError(f"the configuration is read-only (tried to set {attr!r})")

    def __delattr__(self, attr: str) -> None:
        raise AttributeError(f"the configuration is read-only (tried to delete {attr!r})")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as itself, scope included (a Ray worker trains on the stage's view)."""
        return (ScopedConfig, (self._obj, self._scope, self._path))

    def __repr__(self) -> str:
        where = ".".join(self._path) or "config"
        return f"<{where} as stage {self._scope.stage!r} sees it: {type(self._obj).__name__}>"


def scope(cfg: Any, spec: StageSpec, variant: str | None = None) -> Any:
    """``cfg`` as stage ``spec`` may read it; configuration ``variant`` resolved first.

    A stage that declares every key gets ``cfg`` itself.
    """
    if isinstance(cfg, ScopedConfig):
        s = cfg._scope
        if s.stage == spec.name and s.variant == variant:
            return cfg
        raise TypeError(f"stage {spec.name!r} was handed stage {s.stage!r}'s view: pass the Config")
    if variant is not None:
        cfg = cfg.variant(variant)
    declared = tuple(tuple(k.split(".")) for k in spec.params_for(variant))
    s = Scope(spec.name, declared, variant)
    return cfg if s.covers((), cfg) else ScopedConfig(cfg, s)
