"""Reading params.yaml, applying overrides, validating once, and writing overrides back."""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from negsamp.config import overrides as ov
from negsamp.config.base import PARAMS_FILE, ConfigError
from negsamp.config.tree import Config


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).endswith("Cfg"))
        loc = loc.replace("validate_", "validate")
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key (typo? see params.yaml for the keys this section takes)"
        msg = msg.removeprefix("Value error, ")
        lines.append(f"  {loc}: {msg}" if loc else f"  {msg}")
    return "\n".join(lines)


def from_dict(raw: dict[str, Any] | None, source: str = PARAMS_FILE) -> Config:
    """Validate a params.yaml document (after overrides): the one validation every route shares."""
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{source} must hold a mapping of sections, got {type(raw).__name__}")
    try:
        return Config.model_validate(raw or {})
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None


def read_document(path: str | Path) -> dict[str, Any]:
    """params.yaml as a plain dict; a missing or unparsable file is a ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path} not found: run from the project root or pass --params")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, got {type(raw).__name__}")
    return raw


def _parsed(overrides: Iterable[str | ov.Override] | None) -> list[ov.Override]:
    return [ov.parse(o) if isinstance(o, str) else o for o in overrides or ()]


def load(
    path: str | Path = PARAMS_FILE, overrides: Iterable[str | ov.Override] | None = None
) -> Config:
    """Parse params.yaml, apply overrides in memory, validate once."""
    doc = ov.apply(read_document(path), _parsed(overrides))
    return from_dict(doc, str(path))


def update(path: str | Path, overrides: Iterable[str | ov.Override]) -> tuple[Config, list[str]]:
    """Apply overrides, validate, then write them into params.yaml keeping its comments.

    The same :func:`negsamp.config.overrides.apply` sets the keys in memory (validated before
    anything is written, so a bad override never reaches the file) and in the commented
    document that is written (atomically). Returns the validated configuration and the
    overrides that changed the file.
    """
    from ruamel.yaml import YAML

    from negsamp.io import atomic_write

    path = Path(path)
    parsed = _parsed(overrides)
    cfg = load(path, parsed)  # raises ConfigError before anything is written
    if not parsed:
        return cfg, []
    ry = YAML()
    ry.preserve_quotes = True
    ry.representer.add_representer(type(None), _null)
    ry.representer.add_representer(float, _real)
    doc = ry.load(path.read_text())
    before = copy.deepcopy(read_document(path))
    changed = []
    for o in parsed:
        node: Any = before
        for p in o[0]:
            node = node.get(p) if isinstance(node, dict) else None
        if node != o[1]:
            changed.append(ov.text(o))
        ov.apply(doc, [o])
        ov.apply(before, [o])
    if changed:
        buf = io.StringIO()
        ry.dump(doc, buf)
        text = buf.getvalue()
        _check_written(path, text, cfg)
        atomic_write(path, text.encode())
    return cfg, changed


def _null(representer: Any, _: None) -> Any:
    """``null`` stays ``null`` (ruamel writes an empty value by default, which reads back
    as null but is not what the user wrote, issue #15)."""
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _check_written(path: Path, text: str, cfg: Config) -> None:
    """The text about to replace ``path`` must parse back to exactly ``cfg`` (issue #15:
    a write once produced YAML the next command could not read)."""
    try:
        again = from_dict(yaml.safe_load(text) or {})
    except Exception as err:
        raise ConfigError(
            f"{path}: the updated file would not read back ({err}); it was left unchanged"
        ) from None
    if again != cfg:
        raise ConfigError(
            f"{path}: the updated file would read back differently from the validated "
            "configuration; it was left unchanged (please report this)"
        )


def _real(representer: Any, value: float) -> Any:
    """Floats in a form every YAML reader takes as a float: ``1.0e-05``, not ruamel's
    ``1e-05``, which PyYAML (YAML 1.1) reads as a string."""
    if not math.isfinite(value):
        text = yaml.safe_dump(value).split("\n")[0]
        return representer.represent_scalar("tag:yaml.org,2002:float", text)
    text = repr(value)
    mantissa, e, exp = text.partition("e")
    if e and "." not in mantissa:
        text = f"{mantissa}.0e{exp}"
    return representer.represent_scalar("tag:yaml.org,2002:float", text)


def write_overrides(path: str | Path, overrides: Iterable[str | ov.Override]) -> list[str]:
    """:func:`update`, returning only the overrides that changed the file."""
    return update(path, overrides)[1]


def dump(cfg: Config, active_only: bool = False) -> dict[str, Any]:
    """The config as plain data in params.yaml's layout (``validate``, not ``validate_``).

    ``active_only``: only the running sampler's and model's blocks (what MLflow logs, so a
    run's params show the settings that ran, not every plug-in's defaults).
    """
    out = cfg.model_dump(mode="json", by_alias=True)
    if active_only:
        out["sampler"] = cfg.sampler.active_layout()
        out["model"] = cfg.model.active_layout()
    return out


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (for MLflow params)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out
