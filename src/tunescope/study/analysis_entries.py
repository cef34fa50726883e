"""The analyses of a study: names and groups, and their configs checked against the config
types the analyses registered (:mod:`tunescope.analyses.registry`).

Groups for ``--analyses``: see :data:`GROUPS`; a single registered name works too.
"""

from __future__ import annotations

import dataclasses
import types
import typing

from tunescope.analyses import REGISTRY
from tunescope.study.yaml_source import quoted

GROUPS: dict[str, tuple[str, ...]] = {
    "consistency": ("prediction_consistency", "representation_consistency",
                    "downstream_consistency"),
    "recall": ("attention_knockout", "extraction_rate", "subject_enrichment"),
    "attribution": ("attribution",),
    "heads": ("attention_heads",),
    "concepts": ("ffn_concepts",),
}
"""The analysis groups of the two studies (consistency and recall after Fierro et al. and Geva
et al.; attribution, heads and concepts after Wu et al.)."""


def valid_names() -> str:
    """Groups and registered analyses, for error messages."""
    return (f"groups {', '.join(GROUPS)}; analyses {', '.join(sorted(REGISTRY))}")


def expand(names) -> list[str] | str:
    """Analysis names of a list of names and groups, each once, in the order given; or the
    problem (a string) naming the first unknown one and the valid ones."""
    out: list[str] = []
    for name in names:
        if not isinstance(name, str):
            return f"analysis names must be strings, got {quoted(name)}; valid: {valid_names()}"
        if name in GROUPS:
            members = GROUPS[name]
        elif name in REGISTRY:
            members = (name,)
        else:
            return f"unknown analysis {quoted(name)}; valid: {valid_names()}"
        out += [m for m in members if m not in out]
    return out


def _check(value, hint, path: str):
    """``value`` converted to the type ``hint`` (YAML lists become tuples), or raise
    TypeError naming what was expected."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(hint)
        if value is None and type(None) in members:
            return None
        problems = []
        for member in members:
            if member is type(None):
                continue
            try:
                return _check(value, member, path)
            except TypeError as e:
                problems.append(str(e))
        raise TypeError(problems[0] + (" or null" if type(None) in members else ""))
    if origin is tuple:
        args = typing.get_args(hint)
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected a list, got {quoted(value)}")
        item = args[0] if args else typing.Any
        return tuple(_check(v, item, path) for v in value)
    if hint is typing.Any:
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, got {quoted(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {quoted(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {quoted(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {quoted(value)}")
        return value
    return value


def make_config(name: str, overrides: dict, seed: int):
    """The config object of analysis ``name`` with ``overrides`` checked and converted against
    its field types. A ``seed`` field not given takes the study seed.

    Raises KeyError (unknown field, with the valid ones in its message) or TypeError
    ``(field, message)`` for a wrong type; ValueError for a config the type itself refuses."""
    analysis = REGISTRY[name]
    hints = typing.get_type_hints(analysis.config)
    known = [f.name for f in dataclasses.fields(analysis.config)]
    values = {}
    for key, value in overrides.items():
        if key not in hints or key not in known:
            raise KeyError(key, f"analysis '{name}' has no parameter {quoted(key)}; parameters: "
                                f"{', '.join(known)}")
        try:
            values[key] = _check(value, hints[key], key)
        except TypeError as e:
            raise TypeError(key, str(e)) from None
    if "seed" in known and "seed" not in values:
        values["seed"] = seed
    return analysis.make_config(**values)


def config_dict(config) -> dict:
    """Every field of a config as plain YAML/JSON values of its declared type (tuples become
    lists, integral defaults of float fields floats), so that reading it back is exact."""
    def plain(v):
        return [plain(x) for x in v] if isinstance(v, (list, tuple)) else v
    hints = typing.get_type_hints(type(config))
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        try:
            value = _check(value, hints.get(f.name, typing.Any), f.name)
        except TypeError:
            pass
        out[f.name] = plain(value)
    return out
