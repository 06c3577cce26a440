"""A plug-in section: ``name`` picks the plug-in, each plug-in keeps its settings under its name.

In params.yaml a plug-in section (``sampler``, ``model``) holds ``name``, the settings every
plug-in of the section shares, and one block per plug-in with that plug-in's own settings::

    sampler:
      name: hard          # the plug-in that runs
      n_neg: 4            # shared by the plug-ins that have it
      popularity: {alpha: 0.75}
      hard: {candidates: 32, k: 1, ...}

Switching ``name`` (``--set sampler.name=hard``, ``dvc exp run -S sampler.name=hard``, a
``sweep.configs`` entry) therefore keeps every plug-in's settings, and every block is
validated whichever plug-in runs. :attr:`PluginSection.active` is the running plug-in's
resolved, typed configuration (name + shared + own settings), what models and samplers take.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError, model_validator

from negsamp.config.base import Frozen


class PluginSection(Frozen):
    """Base of a plug-in section; subclasses set the class variables below."""

    SECTION: ClassVar[str]
    SHARED: ClassVar[tuple[str, ...]]  # section-level settings a plug-in may take
    RESOLVED: ClassVar[dict[str, type[BaseModel]]]  # name -> resolved config class

    name: str

    @classmethod
    def blocks(cls) -> tuple[str, ...]:
        """The plug-ins that have settings of their own (a block under their name)."""
        return tuple(n for n in cls.RESOLVED if n in cls.model_fields)

    @model_validator(mode="before")
    @classmethod
    def _from_resolved_or_explain(cls, data: Any) -> Any:
        if isinstance(data, tuple(cls.RESOLVED.values())):
            return cls.layout_of(data)  # type: ignore[arg-type]
        if not isinstance(data, dict):
            return data
        for key in data:
            if key in cls.model_fields:
                continue
            owners = [b for b in cls.blocks() if key in cls.model_fields[b].annotation.model_fields]  # type: ignore[union-attr]
            if owners:
                own = data.get("name") if data.get("name") in owners else owners[0]
                raise ValueError(
                    f"{key} is a setting of {', '.join(owners)}, not of the section: write "
                    f"{cls.SECTION}.{own}.{key} (each plug-in keeps its settings under its name)"
                )
        return data

    @model_validator(mode="after")
    def _active_is_valid(self) -> PluginSection:
        try:
            self.active  # noqa: B018 - builds and validates the resolved plug-in
        except ValidationError as err:
            msgs = "; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors())
            raise ValueError(f"{self.SECTION}.{self.name}: {msgs}") from None
        return self

    @property
    def active(self) -> Any:
        """The running plug-in's resolved configuration: name + shared + its own settings."""
        cls = self.RESOLVED[self.name]
        data: dict[str, Any] = {k: getattr(self, k) for k in self.SHARED if k in cls.model_fields}
        block = getattr(self, self.name, None) if self.name in self.model_fields else None
        if isinstance(block, BaseModel):
            data |= {k: getattr(block, k) for k in type(block).model_fields}
        return cls(name=self.name, **data)

    @classmethod
    def layout_of(cls, resolved: BaseModel) -> dict[str, Any]:
        """The section (params.yaml layout) whose active plug-in is ``resolved``."""
        values = {k: getattr(resolved, k) for k in type(resolved).model_fields}
        name = values.pop("name")
        out: dict[str, Any] = {"name": name}
        out |= {k: values.pop(k) for k in cls.SHARED if k in values}
        if name in cls.model_fields:
            out[name] = values
        return out

    @classmethod
    def search_space(cls, name: str) -> dict[tuple[str, ...], Any]:
        """What ``negsamp tune`` searches for plug-in ``name``: override path -> dimension
        (:mod:`negsamp.config.search`), from the ``SEARCH_SPACE`` its settings classes
        declare; a shared setting's path is the section's, any other the plug-in's block."""
        from negsamp.config.search import collect

        if name not in cls.RESOLVED:
            raise ValueError(f"unknown {cls.SECTION} {name!r}; known: {sorted(cls.RESOLVED)}")
        out: dict[tuple[str, ...], Any] = {}
        for key, dim in collect(cls.RESOLVED[name]).items():
            shared = key in cls.SHARED
            out[(cls.SECTION, key) if shared else (cls.SECTION, name, key)] = dim
        return out

    def active_layout(self) -> dict[str, Any]:
        """This section in params.yaml layout with only the running plug-in's block."""
        full = self.model_dump(mode="json")
        return {k: v for k, v in full.items() if k not in self.blocks() or k == self.name}
