"""The documentation matches the code: the README's layout names every module of the package and
no file that does not exist; docstrings point to sections of docs/methods.md that exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "tunescope"


def layout_block(text: str) -> str:
    start = text.index("```\nsrc/tunescope/")
    return text[start:text.index("```", start + 3)]


def named_files(block: str) -> set[str]:
    """Package-relative paths the tree names: a line ``  folder/  a.py, b.py`` (or its
    indented continuation lines) names ``folder/a.py`` and ``folder/b.py``; a line that starts
    with a file names top-level files; the tree of the package ends at the first line that is
    not indented (``tests/``, ``docs/``, ...)."""
    files, folder = set(), ""
    for line in block.splitlines()[2:]:          # after "```" and "src/tunescope/"
        if not line.startswith("  "):
            break
        head = re.match(r"^  ([\w/]+/)\s", line)
        if head:
            folder, line = head.group(1), line[head.end():]
        elif re.match(r"^  \w+\.py", line):
            folder = ""
        files |= {folder + name for name in re.findall(r"\b\w+\.py\b", line)}
    return files


def package_files() -> set[str]:
    return {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
            if p.name not in ("__init__.py", "__main__.py")}


@pytest.mark.parametrize("doc", ["README.md", "docs/architecture.md"])
def test_the_layout_names_every_module_and_only_real_ones(doc):
    named = named_files(layout_block((ROOT / doc).read_text("utf-8")))
    assert named - package_files() == set(), "named but missing"
    assert package_files() - named == set(), "in the package but not in the layout"


def test_the_layout_check_catches_a_missing_module():
    block = "```\nsrc/tunescope/\n  engine/    batching.py,\n             gone.py\ntests/  x.py\n"
    assert named_files(block) == {"engine/batching.py", "engine/gone.py"}


def test_docstring_links_to_the_methods_exist():
    anchors = set(re.findall(r'<a id="([\w-]+)"', (ROOT / "docs/methods.md").read_text("utf-8")))
    links = {m for p in PACKAGE.rglob("*.py")
             for m in re.findall(r"docs/methods\.md#([\w-]+)", p.read_text("utf-8"))}
    assert len(links) >= 7 and links <= anchors
    leftovers = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if "METHODS.md" in p.read_text("utf-8")]
    assert leftovers == []
