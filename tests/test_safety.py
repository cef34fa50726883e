"""Safety: no pickle loading and no ``eval``/``exec`` anywhere in the package (an AST scan),
remote code off unless asked, names and paths that cannot escape their directories, and
``.npz`` archives whose arrays would need pickle refused with a clear error."""

from __future__ import annotations

import ast
import importlib
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from tiny import tiny_model, tiny_tokenizer

import tunescope
from tunescope.data.pararel import load_pararel, pull_pararel
from tunescope.data.wu2024_levels import load_levels
from tunescope.errors import DataError, ModelNotFoundError, TunescopeError
from tunescope.models import bundled

PACKAGE = Path(tunescope.__file__).resolve().parent
PARAREL_MODULE = importlib.import_module("tunescope.data.pararel")
"""The module: ``tunescope.data.pararel`` as an attribute is the function ``pararel()``."""

PICKLE_MODULES = frozenset({"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "shelve",
                            "marshal", "jsonpickle"})
"""Modules whose loaders run arbitrary code from the bytes they read."""


# --- (a) the AST scan -------------------------------------------------------------------------

def _qualified_names(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted name it is bound to by the module's imports
    (``import numpy as np`` -> ``{"np": "numpy"}``, ``from torch import load`` ->
    ``{"load": "torch.load"}``)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.AST, names: dict[str, str]) -> str | None:
    """``np.load`` -> ``"numpy.load"`` through the import aliases; None for other callees."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(names.get(node.id, node.id))
    return ".".join(reversed(parts))


def _keyword(call: ast.Call, name: str):
    """The literal value of keyword ``name`` of ``call``; ``...`` when it is absent or not a
    literal."""
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value.value if isinstance(kw.value, ast.Constant) else ...
    return ...


def unsafe_uses(source: str, filename: str = "<source>") -> list[str]:
    """``"file:line: what"`` for each unsafe use in ``source``.

    Flagged: importing a pickle-family module (:data:`PICKLE_MODULES`, also
    ``from pickle import ...``); ``joblib.load``; ``pandas.read_pickle`` (or any
    ``.read_pickle`` call); ``torch.load`` without a literal ``weights_only=True``;
    ``numpy.load`` without a literal ``allow_pickle=False``; any ``allow_pickle=True`` or
    ``trust_remote_code=True`` keyword; calls of the builtins ``eval`` and ``exec``.
    """
    tree = ast.parse(source, filename)
    names = _qualified_names(tree)
    found = []

    def flag(node, what):
        found.append(f"{filename}:{node.lineno}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PICKLE_MODULES:
                    flag(node, f"imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in PICKLE_MODULES:
                flag(node, f"imports from {node.module}")
        elif isinstance(node, ast.Call):
            callee = _dotted(node.func, names)
            if callee in ("eval", "exec", "builtins.eval", "builtins.exec"):
                flag(node, f"calls {callee}()")
            elif callee == "joblib.load":
                flag(node, "calls joblib.load (pickle)")
            elif callee == "torch.load" and _keyword(node, "weights_only") is not True:
                flag(node, "calls torch.load without weights_only=True")
            elif callee == "numpy.load" and _keyword(node, "allow_pickle") is not False:
                flag(node, "calls numpy.load without allow_pickle=False")
            elif isinstance(node.func, ast.Attribute) and node.func.attr == "read_pickle":
                flag(node, "calls read_pickle")
            if _keyword(node, "allow_pickle") is True and callee != "numpy.load":
                flag(node, "passes allow_pickle=True")
            if _keyword(node, "trust_remote_code") is True:
                flag(node, "passes trust_remote_code=True")
    return found


UNSAFE_EXAMPLES = {
    "import pickle\n": "imports pickle",
    "import dill as d\n": "imports dill",
    "from pickle import loads\n": "imports from pickle",
    "import joblib\njoblib.load('m.joblib')\n": "calls joblib.load",
    "import pandas as pd\npd.read_pickle('f.pkl')\n": "calls read_pickle",
    "import torch\ntorch.load('w.pt')\n": "calls torch.load without weights_only=True",
    "import torch\ntorch.load('w.pt', weights_only=False)\n": "torch.load without",
    "from torch import load\nload('w.pt')\n": "torch.load without",
    "import numpy as np\nnp.load('a.npz')\n": "numpy.load without allow_pickle=False",
    "import numpy\nnumpy.load('a.npz', allow_pickle=flag)\n": "numpy.load without",
    "from numpy import load as L\nL('a.npy', allow_pickle=True)\n": "numpy.load without",
    "import pandas as pd\npd.read_csv('f', allow_pickle=True)\n": "passes allow_pickle=True",
    "m.from_pretrained('x', trust_remote_code=True)\n": "trust_remote_code=True",
    "eval('1 + 1')\n": "calls eval()",
    "exec('x = 1')\n": "calls exec()",
}
SAFE_EXAMPLES = [
    "import numpy as np\nnp.load('a.npz', allow_pickle=False)\n",
    "import torch\ntorch.load('w.pt', weights_only=True, map_location='cpu')\n",
    "model.eval()\nm.from_pretrained('x', trust_remote_code=kwargs['trust_remote_code'])\n",
    "import json\njson.load(open('f.json'))\n",
]


@pytest.mark.parametrize("source", sorted(UNSAFE_EXAMPLES))
def test_scanner_flags_each_unsafe_use(source):
    found = unsafe_uses(source)
    assert len(found) == 1 and UNSAFE_EXAMPLES[source] in found[0], found


@pytest.mark.parametrize("source", SAFE_EXAMPLES)
def test_scanner_passes_safe_uses(source):
    assert unsafe_uses(source) == []


def test_package_has_no_unsafe_loading_remote_code_or_eval():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) >= 40 and PACKAGE / "data" / "wu2024_levels.py" in files
    found = [hit for f in files
             for hit in unsafe_uses(f.read_text(encoding="utf-8"), str(f.relative_to(PACKAGE)))]
    assert found == []


def test_stored_levels_are_read_without_pickle():
    """The one ``numpy.load`` of the package reads users' .npz files with allow_pickle=False."""
    source = (PACKAGE / "data" / "wu2024_levels.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    names = _qualified_names(tree)
    loads = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and _dotted(n.func, names) == "numpy.load"]
    assert len(loads) == 1 and _keyword(loads[0], "allow_pickle") is False


# --- (b) remote code is off unless asked ------------------------------------------------------

def _record_kwargs(monkeypatch, cls, calls: list, replacement=None):
    """Wrap ``cls.from_pretrained`` so that each call's keyword arguments land in ``calls``;
    with ``replacement`` the wrapper returns ``replacement()`` instead of loading."""
    original = cls.from_pretrained

    def wrapper(*args, **kwargs):
        calls.append((cls.__name__, kwargs))
        return replacement() if replacement else original(*args, **kwargs)
    monkeypatch.setattr(cls, "from_pretrained", wrapper)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-model") / "m"
    tiny_model("llama").save_pretrained(path)
    tiny_tokenizer().save_pretrained(path)
    return path


@pytest.mark.parametrize("asked", [None, False, True])
def test_local_model_gets_trust_remote_code_only_when_asked(monkeypatch, tiny_dir, asked):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    calls: list = []
    _record_kwargs(monkeypatch, AutoModelForCausalLM, calls)
    _record_kwargs(monkeypatch, AutoTokenizer, calls)
    lm = tunescope.load(tiny_dir) if asked is None else \
        tunescope.load(tiny_dir, trust_remote_code=asked)
    assert lm.source == "local"
    assert [name for name, _ in calls] == ["AutoTokenizer", "AutoModelForCausalLM"]
    assert [kw["trust_remote_code"] for _, kw in calls] == [asked is True] * 2


@pytest.mark.parametrize("asked", [None, True])
def test_hub_model_gets_trust_remote_code_only_when_asked(monkeypatch, asked):
    """A hub id, with the hub faked: config, tokenizer and weights all see the flag."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network probe
    model = tiny_model("llama")
    calls: list = []
    _record_kwargs(monkeypatch, AutoConfig, calls, lambda: model.config)
    _record_kwargs(monkeypatch, AutoTokenizer, calls, tiny_tokenizer)
    _record_kwargs(monkeypatch, AutoModelForCausalLM, calls, lambda: model)
    kwargs = {} if asked is None else {"trust_remote_code": asked}
    lm = tunescope.load("some-org/some-model", **kwargs)
    assert lm.source == "hub" and lm.name == "some-org/some-model"
    assert [name for name, _ in calls] == ["AutoConfig", "AutoTokenizer", "AutoModelForCausalLM"]
    assert [kw["trust_remote_code"] for _, kw in calls] == [asked is True] * 3


# --- (c) names and paths cannot escape ----------------------------------------------------------

ESCAPES = ["../../etc", "../models", "/etc/passwd", "gemma-3-270m/../../x", "..", "",
           "gemma-3-270m/", "./gemma-3-270m", "gemma-3-270m\x00"]


@pytest.mark.parametrize("name", ESCAPES)
def test_bundled_names_are_checked_before_any_path_is_built(monkeypatch, tmp_path, name):
    monkeypatch.setenv("TUNESCOPE_CACHE", str(tmp_path / "cache"))
    for call in (bundled.get, bundled.model_dir, bundled.is_ready, bundled.status,
                 lambda n: bundled.pull(n, install=False)):
        with pytest.raises(ModelNotFoundError, match="unknown bundled model"):
            call(name)
    assert not (tmp_path / "cache").exists()


def test_bundled_names_are_plain_and_stay_in_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TUNESCOPE_CACHE", str(tmp_path))
    for name in bundled.BUNDLED:
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*", name) and ".." not in name
        assert bundled.model_dir(name).resolve().parent == (tmp_path / "models").resolve()


def _flat_pararel(root: Path) -> Path:
    for sub, row in (("patterns", {"pattern": "The capital of [X] is [Y]."}),
                     ("tuples", {"sub_label": "France", "obj_label": "Paris"})):
        (root / sub).mkdir(parents=True)
        (root / sub / "P36.jsonl").write_text(json.dumps(row) + "\n")
    return root


@pytest.mark.parametrize("rid", ["../x", "../tuples/P36", "P36/../../x", "/etc/passwd",
                                 "P36.jsonl", "..", "P36\x00"])
def test_pararel_relation_ids_are_looked_up_never_made_into_paths(tmp_path, rid):
    """A relation id only selects among the directory's own files: ``../x`` does not reach
    the ``x.jsonl`` files placed beside ``patterns/`` and ``tuples/``."""
    root = _flat_pararel(tmp_path / "pararel")
    (root / "x.jsonl").write_text(json.dumps({"pattern": "[X] [Y]"}) + "\n")
    (tmp_path / "x.jsonl").write_text(json.dumps({"pattern": "[X] [Y]"}) + "\n")
    with pytest.raises(DataError, match=r"unknown relation .*; available: P36 \(1 in all\)"):
        load_pararel(root, relations=[rid])


@pytest.mark.parametrize("rid", ["../evil", "P36/../../evil", "/tmp/evil", "P36.jsonl", "P",
                                 "P36\n", "P 36", "p36", 36])
def test_pull_pararel_rejects_ids_that_are_not_plain_before_writing(tmp_path, rid):
    dest = tmp_path / "dest"
    with pytest.raises(TunescopeError, match="invalid ParaRel relation id"):
        pull_pararel(dest, base_url="http://127.0.0.1:9/", relations=["P36", rid])
    assert not dest.exists() and sorted(p.name for p in tmp_path.iterdir()) == []


def test_pull_pararel_writes_only_under_its_destination(tmp_path, monkeypatch):
    """pull_pararel fetches a fixed list of validated ids (there is no served file list);
    every file it writes lies in dest/patterns or dest/tuples."""
    written: list[tuple[str, Path]] = []
    rows = {"patterns": {"pattern": "The capital of [X] is [Y]."},
            "tuples": {"sub_label": "France", "obj_label": "Paris"}}

    def fake_download(url, target, timeout):
        written.append((url, target))
        target.write_text(json.dumps(rows[target.parent.name]) + "\n")

    monkeypatch.setattr(PARAREL_MODULE, "_download", fake_download)
    dest = tmp_path / "d" / ".." / "dest"
    pull_pararel(dest, base_url="https://example.org/pararel", relations=["P36", "P1412"])
    root = (tmp_path / "dest").resolve()
    assert [u for u, _ in written] == [
        "https://example.org/pararel/data/pattern_data/graphs_json/P36.jsonl",
        "https://example.org/pararel/data/trex_lms_vocab/P36.jsonl",
        "https://example.org/pararel/data/pattern_data/graphs_json/P1412.jsonl",
        "https://example.org/pararel/data/trex_lms_vocab/P1412.jsonl"]
    assert [t.resolve().relative_to(root).as_posix() for _, t in written] == [
        "patterns/P36.jsonl", "tuples/P36.jsonl", "patterns/P1412.jsonl", "tuples/P1412.jsonl"]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")
                  if p.is_file()) == ["dest/patterns/P1412.jsonl", "dest/patterns/P36.jsonl",
                                      "dest/tuples/P1412.jsonl", "dest/tuples/P36.jsonl"]


# --- (d) .npz archives that would need pickle ---------------------------------------------------

def _tokens(path: Path) -> Path:
    path.write_text(json.dumps({"id": "a", "input_tokens": ["\u2581Hi", "."],
                                "output_tokens": ["\u2581Yes"], "shape": [2, 1]}) + "\n")
    return path


def test_npz_with_an_object_array_is_refused(tmp_path):
    np.savez(tmp_path / "m_levels.npz", a=np.array([[{"x": 1}], [2]], dtype=object))
    with pytest.raises(DataError) as info:
        load_levels(tmp_path / "m_levels.npz", _tokens(tmp_path / "m_tokens.jsonl"))
    assert str(info.value) == (f"{tmp_path / 'm_levels.npz'}: cannot read matrix 'a': it holds "
                               "Python objects (pickled data), which tunescope never loads")


def test_pickle_file_named_npz_is_refused_without_unpickling(tmp_path):
    """A pickle stream (which numpy.load would unpickle if allowed) under an .npz name: refused
    from its first bytes, before NumPy sees it."""
    pickled = tmp_path / "m_levels.npz"
    pickled.write_bytes(b"\x80\x04K\x01.")  # the pickle of the int 1
    with pytest.raises(DataError, match=r"m_levels\.npz: cannot read as an \.npz archive: no "
                                        r"zip signature at the start$"):
        load_levels(pickled, _tokens(tmp_path / "m_tokens.jsonl"))


def test_npz_member_that_is_not_an_array_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a", b"\x80\x04K\x01.")  # a pickled 1, stored without the .npy suffix
    (tmp_path / "m_levels.npz").write_bytes(buf.getvalue())
    with pytest.raises(DataError, match=r"cannot read matrix 'a': the archive member is not a "
                                        r"NumPy array$"):
        load_levels(tmp_path / "m_levels.npz", _tokens(tmp_path / "m_tokens.jsonl"))
