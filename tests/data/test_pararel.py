"""ParaRel loading (both layouts), validation errors, the built-in mini set and pull_pararel."""

from __future__ import annotations

import functools
import json
import shutil
import socket
import threading
import warnings
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tunescope.data.pararel import (
    PARAREL_RELATIONS,
    builtin_pararel_path,
    load_pararel,
    pararel,
    pull_pararel,
)
from tunescope.data.types import Relation, template_problem
from tunescope.errors import DataError, TunescopeError

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "pararel"
needs_shared = pytest.mark.skipif(not (SHARED / "patterns").is_dir(),
                                  reason="shared ParaRel data not present")


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text
    return text


def _write_flat(root: Path, patterns: dict[str, list[str]], tuples: dict[str, list[str]]) -> Path:
    """A flat ParaRel directory whose files hold the given raw lines."""
    (root / "patterns").mkdir(parents=True)
    (root / "tuples").mkdir()
    for rid, lines in patterns.items():
        (root / "patterns" / f"{rid}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for rid, lines in tuples.items():
        (root / "tuples" / f"{rid}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _pat(p: str) -> str:
    return json.dumps({"pattern": p})


def _tup(s: str, o: str, uuid: str = "u") -> str:
    return json.dumps({"sub_label": s, "obj_label": o, "uuid": uuid})


GOOD_PATTERNS = [_pat("The capital of [X] is [Y]."), _pat("[Y] is the capital of [X].")]
GOOD_TUPLES = [_tup("France", "Paris", "1"), _tup("Italy", "Rome", "2")]


def _repo_copy(root: Path, ids: list[str], extra_tuples: list[str] = ()) -> Path:
    """A copy of some shared relations in the published repository layout under ``root``."""
    pat = root / "data" / "pattern_data" / "graphs_json"
    tup = root / "data" / "trex_lms_vocab"
    pat.mkdir(parents=True)
    tup.mkdir(parents=True)
    for rid in ids:
        shutil.copy(SHARED / "patterns" / f"{rid}.jsonl", pat / f"{rid}.jsonl")
        shutil.copy(SHARED / "tuples" / f"{rid}.jsonl", tup / f"{rid}.jsonl")
    for rid in extra_tuples:
        shutil.copy(SHARED / "tuples" / f"{rid}.jsonl", tup / f"{rid}.jsonl")
    return root


# --- the shared ParaRel copy ---------------------------------------------------------------

@needs_shared
def test_shared_p36_counts():
    (rel,) = load_pararel(SHARED, relations=["P36"])
    assert isinstance(rel, Relation)
    assert rel.id == "P36" and rel.label == "capital"
    assert len(rel.templates) == 14
    assert sum(t.y_last for t in rel.templates) == 8
    assert len(rel.facts) == 471
    assert len(rel.objects) == 251
    assert rel.templates[0].pattern == "The capital of [X] is [Y] ."
    first = rel.facts[0]
    assert (first.subject, first.object, first.uuid) == (
        "Cook County", "Chicago", "4168a6fb-d710-4678-93f9-9447927a0a35")
    assert all(f.relation_id == "P36" for f in rel.facts)


@needs_shared
def test_shared_all_relations():
    rels = load_pararel(SHARED)
    ids = [r.id for r in rels]
    # P31 and P527 have facts but no templates: not relations here.
    assert len(rels) == 39 and "P31" not in ids and "P527" not in ids
    assert ids[:3] == ["P17", "P19", "P20"] and ids[-1] == "P1412"  # by id number
    assert set(ids) == set(PARAREL_RELATIONS)
    assert sum(len(r.templates) for r in rels) == 329
    assert sum(len(r.facts) for r in rels) == 27610
    assert all(r.label for r in rels)


@needs_shared
def test_shared_y_last_only():
    (rel,) = load_pararel(SHARED, relations="P36", y_last_only=True)
    assert len(rel.templates) == 8 and all(t.y_last for t in rel.templates)
    assert [t.pattern for t in rel.templates][:2] == ["The capital of [X] is [Y] .",
                                                       "The capital city of [X] is [Y]."]
    assert len(rel.facts) == 471
    (p37,) = load_pararel(SHARED, relations=["P37"], y_last_only=True)
    assert len(p37.templates) == 1
    rels = load_pararel(SHARED, y_last_only=True)
    assert len(rels) == 39
    assert sum(len(r.templates) for r in rels) == 214


def _file_objects(rid):
    """The distinct objects of the relation's fact file, read with json alone (reference)."""
    lines = (SHARED / "tuples" / f"{rid}.jsonl").read_text().splitlines()
    return {json.loads(line)["obj_label"] for line in lines if line.strip()}


@needs_shared
def test_shared_max_facts_and_order():
    full = load_pararel(SHARED, relations=["P36"])[0]
    first = load_pararel(SHARED, relations=["P37", "P36", "P37"], max_facts=5, sample="first")
    assert [r.id for r in first] == ["P37", "P36"]
    assert first[1].facts == full.facts[:5]
    assert first[1].sampling == f"first 5 of {len(full.facts)}"
    assert all(len(r.facts) == 5 for r in first)
    with pytest.raises(TunescopeError, match="max_facts"):
        load_pararel(SHARED, relations=["P36"], max_facts=0)
    with pytest.raises(TunescopeError, match="unknown fact sample"):
        load_pararel(SHARED, relations=["P36"], max_facts=3, sample="top")


@needs_shared
def test_shared_seeded_sample_keeps_every_candidate():
    """A sample of facts is seeded (the same seed gives the same facts, another seed others),
    in file order, not the file's first facts; the candidate set stays the whole file's."""
    full = load_pararel(SHARED, relations=["P103"])[0]
    a = load_pararel(SHARED, relations=["P103", "P36"], max_facts=30, seed=0)
    again = load_pararel(SHARED, relations=["P36", "P103"], max_facts=30, seed=0)
    other = load_pararel(SHARED, relations=["P103"], max_facts=30, seed=1)[0]
    p103 = a[0]
    assert p103.facts == again[1].facts                     # independent of the other relations
    assert p103.facts != other.facts and p103.facts != full.facts[:30]
    index = [full.facts.index(f) for f in p103.facts]
    assert index == sorted(index) and len(set(index)) == 30
    assert p103.sampling == f"random 30 of {len(full.facts)} (seed 0)"
    for rel in a:
        assert set(rel.objects) == _file_objects(rel.id)
    assert len(a[1].objects) == len(_file_objects("P36")) == 251
    # file order puts the famous facts first: the first 30 of P103 are mostly French
    french = lambda facts: sum(f.object == "French" for f in facts) / len(facts)
    assert french(full.facts[:30]) > french(full.facts) + 0.1


@needs_shared
def test_repo_layout_root_and_data_dir(tmp_path):
    root = _repo_copy(tmp_path / "pararel-main", ["P30", "P36", "P37"], extra_tuples=["P31"])
    flat = load_pararel(SHARED, relations=["P30", "P36", "P37"])
    from_root = load_pararel(root)
    from_data = load_pararel(root / "data")
    assert [r.id for r in from_root] == ["P30", "P36", "P37"]
    assert from_root == flat and from_data == flat
    assert len(from_root[2].facts) == 900


# --- validation ------------------------------------------------------------------------------

def test_template_with_two_x(tmp_path):
    root = _write_flat(tmp_path / "pr", {"P1": [GOOD_PATTERNS[0], _pat("[X] and [X] is [Y].")]},
                       {"P1": GOOD_TUPLES})
    with pytest.raises(DataError) as e:
        load_pararel(root)
    msg = _one_line(e.value)
    assert "P1.jsonl:2" in msg and "2 [X]" in msg and "'pattern'" in msg
    assert e.value.line == 2 and e.value.field == "pattern"


def test_template_without_y(tmp_path):
    root = _write_flat(tmp_path / "pr", {"P1": [_pat("The capital of [X].")]}, {"P1": GOOD_TUPLES})
    with pytest.raises(DataError, match=r"P1\.jsonl:1: .*0 \[Y\]"):
        load_pararel(root)


def test_bad_json_on_line_3(tmp_path):
    root = _write_flat(tmp_path / "pr", {"P1": GOOD_PATTERNS},
                       {"P1": GOOD_TUPLES + ['{"sub_label": "Spain", "obj_label": ']})
    with pytest.raises(DataError) as e:
        load_pararel(root)
    msg = _one_line(e.value)
    assert "P1.jsonl" in msg and ":3" in msg and "invalid JSON" in msg
    assert e.value.line == 3 and e.value.path.endswith("P1.jsonl")


def test_empty_lines_skipped_but_counted(tmp_path):
    root = _write_flat(tmp_path / "pr", {"P1": GOOD_PATTERNS},
                       {"P1": [GOOD_TUPLES[0], "", "   ", "[1, 2]"]})
    with pytest.raises(DataError, match=r"P1\.jsonl:4: expected a JSON object"):
        load_pararel(root)
    ok = _write_flat(tmp_path / "ok", {"P1": ["", *GOOD_PATTERNS, ""]}, {"P1": ["", *GOOD_TUPLES]})
    (rel,) = load_pararel(ok)
    assert len(rel.templates) == 2 and len(rel.facts) == 2


def test_missing_and_wrong_type_field(tmp_path):
    root = _write_flat(tmp_path / "pr", {"P1": GOOD_PATTERNS},
                       {"P1": [GOOD_TUPLES[0], json.dumps({"sub_label": "Spain", "uuid": "3"})]})
    with pytest.raises(DataError) as e:
        load_pararel(root)
    msg = _one_line(e.value)
    assert "P1.jsonl:2" in msg and "obj_label" in msg and e.value.field == "obj_label"

    root2 = _write_flat(tmp_path / "pr2", {"P1": [json.dumps({"pattern": 7})]}, {"P1": GOOD_TUPLES})
    with pytest.raises(DataError, match=r"P1\.jsonl:1: field 'pattern': must be a non-empty"):
        load_pararel(root2)


def test_first_bad_line_wins(tmp_path):
    root = _write_flat(tmp_path / "pr", {"P1": GOOD_PATTERNS},
                       {"P1": [GOOD_TUPLES[0], "not json", json.dumps({"sub_label": "x"})]})
    with pytest.raises(DataError, match=r":2: invalid JSON"):
        load_pararel(root)


def test_unknown_relation(tmp_path):
    root = _write_flat(tmp_path / "pr", {"P1": GOOD_PATTERNS, "P2": GOOD_PATTERNS},
                       {"P1": GOOD_TUPLES, "P2": GOOD_TUPLES, "P3": GOOD_TUPLES})
    with pytest.raises(DataError) as e:
        load_pararel(root, relations=["P1", "P999"])
    msg = _one_line(e.value)
    assert "'P999'" in msg and "P1, P2" in msg
    with pytest.raises(DataError, match="'P3'"):  # facts without templates
        load_pararel(root, relations=["P3"])


def test_empty_and_missing_directories(tmp_path):
    empty = _write_flat(tmp_path / "empty", {}, {})
    with pytest.raises(DataError, match="no relation"):
        load_pararel(empty)
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(DataError, match="not a ParaRel directory"):
        load_pararel(bare)
    with pytest.raises(DataError) as e:
        load_pararel(tmp_path / "does-not-exist")
    assert "does-not-exist" in _one_line(e.value)
    a_file = tmp_path / "file.jsonl"
    a_file.write_text("{}\n")
    with pytest.raises(DataError, match="not a directory"):
        load_pararel(a_file)


def test_relation_without_facts_or_templates(tmp_path):
    root = _write_flat(tmp_path / "pr", {"P1": GOOD_PATTERNS}, {"P1": [""]})
    with pytest.raises(DataError, match=r"P1\.jsonl: relation P1 has no facts"):
        load_pararel(root)
    root2 = _write_flat(tmp_path / "pr2", {"P1": []}, {"P1": GOOD_TUPLES})
    with pytest.raises(DataError, match="relation P1 has no templates"):
        load_pararel(root2)


def test_dedup_and_y_last_skip(tmp_path):
    root = _write_flat(tmp_path / "pr",
                       {"P1": GOOD_PATTERNS + [GOOD_PATTERNS[0]], "P2": [_pat("[Y] is in [X].")]},
                       {"P1": GOOD_TUPLES, "P2": GOOD_TUPLES})
    rels = load_pararel(root)
    assert [len(r.templates) for r in rels] == [2, 1]
    with pytest.warns(UserWarning, match="P2"):
        rels = load_pararel(root, y_last_only=True)
    assert [r.id for r in rels] == ["P1"] and len(rels[0].templates) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match=r"\[Y\]"):
            load_pararel(root, relations=["P2"], y_last_only=True)


def test_relations_json_labels(tmp_path):
    root = _write_flat(tmp_path / "pr", {"P1": GOOD_PATTERNS, "P36": GOOD_PATTERNS},
                       {"P1": GOOD_TUPLES, "P36": GOOD_TUPLES})
    assert [r.label for r in load_pararel(root)] == ["", "capital"]  # Wikidata fallback
    (root / "relations.json").write_text(json.dumps({"P1": "my relation"}))
    assert [r.label for r in load_pararel(root)] == ["my relation", "capital"]
    (root / "relations.json").write_text(json.dumps(["P1"]))
    with pytest.raises(DataError, match="relations.json"):
        load_pararel(root)


# --- the built-in mini ParaRel ----------------------------------------------------------------

def test_builtin_invariants():
    rels = pararel()
    assert len(rels) >= 10
    everything = load_pararel(builtin_pararel_path())
    assert [r.id for r in everything] == [r.id for r in rels]
    uuids = set()
    for rel in everything:
        assert rel.label, rel.id
        assert all(template_problem(t.pattern) is None for t in rel.templates)
        assert all(t.article is None for t in rel.templates), rel.id
        assert sum(t.y_last for t in rel.templates) >= 4, rel.id
        assert len(rel.facts) >= 30, rel.id
        subjects = [f.subject for f in rel.facts]
        assert len(subjects) == len(set(subjects)), rel.id
        assert all(f.subject.strip() == f.subject and f.object.strip() == f.object
                   for f in rel.facts)
        assert len(rel.objects) >= 2, rel.id
        uuids.update(f.uuid for f in rel.facts)
    assert len(uuids) == sum(len(r.facts) for r in everything)
    for rel in rels:
        assert len(rel.templates) >= 4 and all(t.y_last for t in rel.templates)


def test_builtin_known_facts():
    by_id = {r.id: r for r in pararel()}
    assert {"P17", "P30", "P36", "P37", "P38", "P50"} <= set(by_id)
    facts = {(f.relation_id, f.subject): f.object for r in by_id.values() for f in r.facts}
    assert facts[("P36", "France")] == "Paris"
    assert facts[("P246", "gold")] == "Au"
    assert facts[("P50", "Nineteen Eighty-Four")] == "George Orwell"
    p36 = by_id["P36"]
    assert p36.templates[0].prompt("France") == "The capital of France is"
    (only,) = pararel(relations=["P36"], max_facts=3, sample="first")
    assert [f.subject for f in only.facts] == ["France", "Germany", "Italy"]
    assert len(only.objects) == len(p36.objects) > 3            # the sample keeps every candidate


# --- pull_pararel -------------------------------------------------------------------------------

class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def repo_server(tmp_path):
    """A local HTTP server serving a few shared relations in the repository layout."""
    if not (SHARED / "patterns").is_dir():
        pytest.skip("shared ParaRel data not present")
    served = _repo_copy(tmp_path / "served", ["P30", "P36"])
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_pull_from_local_server(repo_server, tmp_path):
    dest = tmp_path / "dest"
    out = pull_pararel(dest, base_url=repo_server, relations=["P36", "P30"], timeout=10)
    assert out == dest
    for rid in ("P30", "P36"):
        assert (dest / "patterns" / f"{rid}.jsonl").read_bytes() == \
            (SHARED / "patterns" / f"{rid}.jsonl").read_bytes()
        assert (dest / "tuples" / f"{rid}.jsonl").read_bytes() == \
            (SHARED / "tuples" / f"{rid}.jsonl").read_bytes()
    assert not list(dest.rglob(".*.part"))
    assert load_pararel(dest) == load_pararel(SHARED, relations=["P30", "P36"])


def test_pull_missing_relation_and_bad_ids(repo_server, tmp_path):
    dest = tmp_path / "dest"
    with pytest.raises(TunescopeError) as e:
        pull_pararel(dest, base_url=repo_server, relations=["P36", "P37"], timeout=10)
    msg = _one_line(e.value)
    assert "download failed" in msg and "404" in msg and "P37.jsonl" in msg
    assert "local directory" in msg
    assert not list(dest.rglob(".*.part"))
    for bad in ("../P36", "P36/../../x", "Q5", "P"):
        with pytest.raises(TunescopeError, match="invalid ParaRel relation id"):
            pull_pararel(tmp_path / "d2", base_url=repo_server, relations=[bad])
    assert not (tmp_path / "x").exists()


def test_pull_unreachable_url(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TunescopeError) as e:
        pull_pararel(tmp_path / "dest", base_url=f"http://127.0.0.1:{port}/", relations=["P36"],
                     timeout=5)
    msg = _one_line(e.value)
    assert "download failed" in msg and "local directory" in msg and str(port) in msg


def test_default_pull_list_matches_shared_patterns():
    assert len(PARAREL_RELATIONS) == 39 == len(set(PARAREL_RELATIONS))
    if (SHARED / "patterns").is_dir():
        assert set(PARAREL_RELATIONS) == {p.stem for p in (SHARED / "patterns").glob("*.jsonl")}
