"""The analysis registry: analyses register by name with a typed config.

An analysis is a function ``(lm, dataset, config) -> Result``. Registering it makes it visible to
the CLI, the study runner and the report without any list kept by hand::

    @dataclass(frozen=True)
    class KnockoutConfig:
        window: int = 9

    @register("attention_knockout", KnockoutConfig, dataset="pararel")
    def attention_knockout(lm, dataset, config): ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from tunescope.errors import TunescopeError


@dataclass(frozen=True)
class Analysis:
    """A registered analysis: its function, config type, dataset kind and one-line description."""

    name: str
    run: Callable
    config: type
    dataset: str
    description: str

    def make_config(self, **overrides):
        """The config with its defaults (docs/methods.md) and ``overrides``; unknown keys are an
        error that names the valid ones."""
        known = {f.name for f in dataclasses.fields(self.config)}
        unknown = set(overrides) - known
        if unknown:
            raise TunescopeError(f"analysis '{self.name}' has no parameter(s) "
                                 f"{', '.join(sorted(unknown))}; parameters: {', '.join(sorted(known))}")
        return self.config(**overrides)


REGISTRY: dict[str, Analysis] = {}


def register(name: str, config: type, dataset: str) -> Callable:
    """Decorator registering ``fn`` as analysis ``name`` (description = first docstring line)."""
    def wrap(fn):
        doc = (fn.__doc__ or "").strip().splitlines()
        REGISTRY[name] = Analysis(name, fn, config, dataset, doc[0] if doc else "")
        return fn
    return wrap


def get(name: str) -> Analysis:
    """The registered analysis ``name``; a clear error listing the available ones otherwise."""
    if name not in REGISTRY:
        known = ", ".join(sorted(REGISTRY)) or "none yet"
        raise TunescopeError(f"unknown analysis '{name}'; available: {known}")
    return REGISTRY[name]
