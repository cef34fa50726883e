"""import_all: every module directly inside a package is imported (so it registers itself);
subpackages are left alone."""

from __future__ import annotations

import sys

from tunescope.common.modules import import_all


def test_a_module_dropped_into_a_package_is_imported(tmp_path, monkeypatch):
    package = tmp_path / "toy_plugins"
    (package / "nested").mkdir(parents=True)
    (package / "__init__.py").write_text("SEEN = []\n")
    (package / "b_second.py").write_text("from toy_plugins import SEEN\nSEEN.append('b')\n")
    (package / "a_first.py").write_text("from toy_plugins import SEEN\nSEEN.append('a')\n")
    (package / "nested" / "__init__.py").write_text("raise RuntimeError('not imported')\n")
    (package / "notes.txt").write_text("not a module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import toy_plugins

    try:
        modules = import_all("toy_plugins", toy_plugins.__path__)
        assert [m.__name__ for m in modules] == ["toy_plugins.a_first", "toy_plugins.b_second"]
        assert toy_plugins.SEEN == ["a", "b"]
    finally:
        for name in [n for n in sys.modules if n.startswith("toy_plugins")]:
            del sys.modules[name]
