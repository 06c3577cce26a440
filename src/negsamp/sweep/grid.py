"""Expanding a grid (``sampler.n_neg=1,4,16``) over the configurations of ``sweep.configs``."""

from __future__ import annotations

import itertools
import re
from typing import Any

import yaml

SECTIONS = ("sampler", "model", "train")


def parse(specs: list[str]) -> dict[str, list[Any]]:
    """``["sampler.n_neg=1,4,16", "model.name=bpr,lmf"]`` -> ``{"sampler.n_neg": [1, 4, 16], ...}``.

    Values are YAML scalars (``0.5``, ``true``, ``null``); a key must be in one of the
    sections a configuration may override (sampler, model, train).
    """
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not values.strip():
            raise ValueError(f"--grid {spec!r}: expected KEY=V1,V2,... e.g. sampler.n_neg=1,4,16")
        if key.split(".")[0] not in SECTIONS or "." not in key:
            raise ValueError(
                f"--grid {spec!r}: a grid key must be in {', '.join(SECTIONS)} "
                "(e.g. sampler.n_neg, model.name, train.lr)"
            )
        vals = [yaml.safe_load(v.strip()) for v in values.split(",")]
        if len(set(map(str, vals))) != len(vals):
            raise ValueError(f"--grid {spec!r}: repeated values")
        grid[key] = vals
    return grid


def _label(key: str, value: Any) -> str:
    """``n_neg4``, ``alpha0.5``, ``lmf`` (a plug-in name alone), ``loss-bce``."""
    leaf = key.rsplit(".", 1)[-1]
    text = re.sub(r"[^A-Za-z0-9_.-]", "", str(value))
    if leaf == "name":
        return text
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return f"{leaf}{text}" if number else f"{leaf}-{text}"


def _set(patch: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in patch.items()}
    node = out
    *parents, leaf = dotted.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    return out


def expand(configs: dict[str, dict[str, Any]], grid: dict[str, list[Any]]) -> dict[str, Any]:
    """Every configuration crossed with every grid point, named ``<config>-<key><value>...``.

    ``configs`` are ``sweep.configs`` as plain dicts; a grid point overrides what a
    configuration sets. An empty grid returns ``configs`` unchanged.
    """
    if not grid:
        return dict(configs)
    out: dict[str, Any] = {}
    keys = list(grid)
    for name, patch in configs.items():
        for point in itertools.product(*(grid[k] for k in keys)):
            new = {k: v for k, v in patch.items() if v}
            for k, v in zip(keys, point, strict=True):
                new = _set(new, k, v)
            out["-".join([name, *(_label(k, v) for k, v in zip(keys, point, strict=True))])] = new
    return out
