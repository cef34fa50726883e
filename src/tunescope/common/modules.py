"""Importing every module of a package, so that the analyses, comparers and report sections
placed in it register themselves (no list kept by hand)."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def import_all(package: str, path) -> list[ModuleType]:
    """Import every module directly inside ``package`` (its ``__path__``: ``path``), sorted by
    name; subpackages are left alone. Returns the modules."""
    return [importlib.import_module(f"{package}.{info.name}")
            for info in sorted(pkgutil.iter_modules(path), key=lambda m: m.name)
            if not info.ispkg]
