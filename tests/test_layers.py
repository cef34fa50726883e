"""The layers of docs/architecture.md: every import in the package (at module level or inside a
function) goes to the module's own layer or one listed before it, so data flows one way."""

from __future__ import annotations

import ast
from pathlib import Path

import tunescope

PACKAGE = Path(tunescope.__file__).resolve().parent

LAYERS = [
    {"_version", "errors"},
    {"common", "stats"},
    {"result"},
    {"models"},
    {"data"},
    {"engine"},
    {"labels", "tuning"},
    {"analyses"},
    {"compare"},
    {"report"},
    {"study"},
    {"cli", "_entry", "__main__", "__init__"},
]
"""Top-level modules and packages of tunescope, in order: each may import only from its own
group and the groups before it."""

RANK = {name: i for i, group in enumerate(LAYERS) for name in group}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports() -> list[tuple[str, str, int]]:
    """(importing module, imported tunescope module, line) for every import in the package."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = ([f"tunescope.{a.name}" for a in node.names] if node.module == "tunescope"
                         else [node.module])
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            out += [(module, n, node.lineno) for n in names if n.split(".")[0] == "tunescope"]
    return out


def test_every_top_level_module_has_a_layer():
    names = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p / "__init__.py").exists())}
    assert names - set(RANK) == set()


def test_no_import_reaches_a_later_layer():
    found = imports()
    assert len(found) > 300                        # the scan sees the package's imports
    upward = [f"{src}:{line} imports {dst}" for src, dst, line in found
              if RANK[_layer(dst)] > RANK[_layer(src)]]
    assert upward == []


def test_the_check_sees_an_upward_import():
    """A module of the engine that imported the study would be caught."""
    assert RANK[_layer("tunescope.study.runner")] > RANK[_layer("tunescope.engine.scoring")]
    assert RANK[_layer("tunescope.compare.depth")] > RANK[_layer("tunescope.analyses.recall")]
