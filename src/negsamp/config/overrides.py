"""The one way a configuration changes: a list of ``(key path, value)`` set on the document.

Every route ends here, on the params.yaml document (a plain dict, or ruamel's commented
map when the file is rewritten): ``--set sampler.n_neg=8`` in any command, ``--grid``, a
``sweep.configs`` entry (flattened to the same pairs by :func:`from_patch`), and ``dvc exp
run -S`` (which DVC writes to params.yaml itself, in the same layout). The result is
validated once, afterwards, by :func:`negsamp.config.load.from_dict`.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

import yaml

from negsamp.config.base import ConfigError

Override = tuple[tuple[str, ...], Any]


def parse(text: str) -> Override:
    """``sampler.popularity.alpha=0.5`` -> (("sampler", "popularity", "alpha"), 0.5).

    Values parse as YAML (``0.5``, ``true``, ``null``, ``[1, 2]``, ``{a: 1}``), as DVC's ``-S`` does.
    """
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key.path=value, e.g. sampler.n_neg=8")
    key, _, value = text.partition("=")
    parts = tuple(p for p in key.strip().split(".") if p)
    if not parts:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        parsed = yaml.safe_load(value) if value != "" else ""
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: the value is not valid YAML ({err})") from None
    return parts, parsed


def from_patch(patch: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[Override]:
    """A nested partial document (a ``sweep.configs`` entry) as the overrides it stands for.

    ``{"sampler": {"name": "hard", "hard": {"k": 2}}}`` ->
    ``[(("sampler", "name"), "hard"), (("sampler", "hard", "k"), 2)]``; lists are values.
    """
    out: list[Override] = []
    for key, value in patch.items():
        path = (*prefix, str(key))
        if isinstance(value, dict) and value:
            out += from_patch(value, path)
        elif not (isinstance(value, dict) and prefix == ()):  # a top-level {} sets nothing
            out.append((path, value))
    return out


def apply(doc: MutableMapping[str, Any], overrides: Iterable[Override]) -> MutableMapping[str, Any]:
    """Set each override on ``doc`` in place (creating missing sections) and return it."""
    for parts, value in overrides:
        node = doc
        for i, p in enumerate(parts[:-1]):
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            if not isinstance(nxt, MutableMapping):
                where = ".".join(parts[: i + 1])
                raise ConfigError(
                    f"cannot set {'.'.join(parts)}: {where} holds a value ({nxt!r}), not a section"
                )
            node = nxt
        node[parts[-1]] = value
    return doc


def text(override: Override) -> str:
    """The ``key.path=value`` form of an override (for messages)."""
    parts, value = override
    return f"{'.'.join(parts)}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"
