"""ParaRel relations: load a local copy, use the built-in mini set, or download the public data.

ParaRel (Elazar et al. 2021) gives each relation several templates (paraphrases with ``[X]`` for
the subject and ``[Y]`` for the object) and a list of (subject, object) facts. Two directory
layouts are read:

* flat: ``patterns/P<id>.jsonl`` (rows ``{"pattern", ...}``) and ``tuples/P<id>.jsonl``
  (rows ``{"sub_label", "obj_label", "uuid"}``), optionally with ``relations.json``
  (``{"P36": "capital", ...}``) naming the relations;
* the published repository: ``data/pattern_data/graphs_json/P<id>.jsonl`` and
  ``data/trex_lms_vocab/P<id>.jsonl`` (the path may name the repository root or its ``data/``).

Every malformed line raises :class:`~tunescope.errors.DataError` naming file, line and field.
"""

from __future__ import annotations

import http.client
import os
import re
import urllib.error
import urllib.request
import warnings
import zlib
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path

import numpy as np

from tunescope.data.files import (
    display_path,
    json_objects,
    json_value,
    one_line,
    read_text,
    shown,
)
from tunescope.data.types import Fact, Relation, Template, template_problem
from tunescope.errors import DataError, OutputError, TunescopeError

DEFAULT_URL = "https://raw.githubusercontent.com/yanaiela/pararel/main/"
"""Where :func:`pull_pararel` downloads from: the raw files of the public ParaRel repository."""

PARAREL_RELATIONS: tuple[str, ...] = (
    "P17", "P19", "P20", "P27", "P30", "P36", "P37", "P39", "P47", "P101", "P103", "P106",
    "P108", "P127", "P131", "P136", "P138", "P140", "P159", "P176", "P178", "P190", "P264",
    "P276", "P279", "P361", "P364", "P407", "P413", "P449", "P463", "P495", "P530", "P740",
    "P937", "P1001", "P1303", "P1376", "P1412",
)
"""The 39 ParaRel relations that have templates (those :func:`pull_pararel` fetches by default)."""

WIKIDATA_LABELS: dict[str, str] = {
    "P17": "country", "P19": "place of birth", "P20": "place of death",
    "P27": "country of citizenship", "P30": "continent", "P36": "capital",
    "P37": "official language", "P38": "currency", "P39": "position held",
    "P47": "shares border with", "P50": "author", "P86": "composer", "P101": "field of work",
    "P103": "native language", "P106": "occupation", "P108": "employer", "P127": "owned by",
    "P131": "located in the administrative territorial entity", "P136": "genre",
    "P138": "named after", "P140": "religion", "P159": "headquarters location",
    "P170": "creator", "P176": "manufacturer", "P178": "developer",
    "P190": "twinned administrative body", "P246": "element symbol", "P264": "record label",
    "P276": "location", "P279": "subclass of", "P361": "part of",
    "P364": "original language of film or TV show", "P407": "language of work or name",
    "P413": "position played on team / speciality", "P449": "original broadcaster",
    "P463": "member of", "P495": "country of origin", "P530": "diplomatic relation",
    "P740": "location of formation", "P937": "work location",
    "P1001": "applies to jurisdiction", "P1303": "instrument", "P1376": "capital of",
    "P1412": "languages spoken, written or signed",
}
"""Wikidata labels of the relation ids used by ParaRel and the built-in set (fallback labels)."""

_PULL_ID = re.compile(r"^P\d+$")
_LAYOUTS = (("patterns", "tuples"),
            ("data/pattern_data/graphs_json", "data/trex_lms_vocab"),
            ("pattern_data/graphs_json", "trex_lms_vocab"))


def _id_key(rid: str) -> tuple:
    m = re.fullmatch(r"([A-Za-z]*)(\d+)", rid)
    return (0, m.group(1), int(m.group(2)), "") if m else (1, "", 0, rid)


def _layout(root: Path) -> tuple[Path, Path]:
    """The (patterns, tuples) directories of a ParaRel directory in either layout."""
    where = display_path(root)
    try:
        if not root.exists():
            raise DataError("no such ParaRel directory", path=where)
        if not root.is_dir():
            raise DataError("not a directory (expected a ParaRel directory)", path=where)
        for pat, tup in _LAYOUTS:
            if (root / pat).is_dir() and (root / tup).is_dir():
                return root / pat, root / tup
    except (OSError, ValueError) as e:  # a name too long, a NUL byte, no permission
        raise DataError(f"cannot open ParaRel directory ({one_line(e)})", path=where) from None
    raise DataError("not a ParaRel directory: expected patterns/ and tuples/, or "
                    "data/pattern_data/graphs_json/ and data/trex_lms_vocab/", path=where)


def _wanted(relations, pat_files: dict[str, Path], tup_files: dict[str, Path],
            available: list[str], root: Path, pat_dir: Path, tup_dir: Path) -> list[str]:
    """The requested relation ids, each checked against the directory's file names (ids are
    only ever looked up there, never made into paths)."""
    if relations is None:
        return available
    if isinstance(relations, str):
        relations = [relations]
    try:
        wanted = list(dict.fromkeys(relations))
    except TypeError:
        raise TunescopeError("relations must be a relation id or a list of relation ids, got "
                             f"{shown(relations)}") from None
    if not wanted:
        raise DataError("no relations requested (empty list)", path=display_path(root))
    for rid in wanted:
        if not isinstance(rid, str):
            raise TunescopeError(f"a relation id must be a string like 'P36', got {shown(rid)}")
        if rid in pat_files and rid not in tup_files:
            raise DataError(f"relation {shown(rid)} has templates ({pat_files[rid].name}) but no "
                            f"fact file in {tup_dir.name}/", path=display_path(root))
        if rid in tup_files and rid not in pat_files:
            raise DataError(f"relation {shown(rid)} has facts ({tup_files[rid].name}) but no "
                            f"template file in {pat_dir.name}/", path=display_path(root))
        if rid not in pat_files:
            shown_ids = ", ".join(map(display_path, available[:12])) + (
                ", ..." if len(available) > 12 else "")
            raise DataError(f"unknown relation {shown(rid)}; available: {shown_ids} "
                            f"({len(available)} in all)", path=display_path(root))
    return wanted


def _jsonl_files(directory: Path) -> dict[str, Path]:
    """Map relation id (file stem) -> file for the ``*.jsonl`` files in ``directory``."""
    return {p.stem: p for p in directory.glob("*.jsonl")
            if p.is_file() and not p.stem.startswith(".")}


def _rows(path: Path, fields: tuple[str, ...],
          optional: tuple[str, ...] = ()) -> Iterator[tuple[int, dict]]:
    """Yield (1-based line number, row) for each non-empty line; DataError for a bad one.

    ``fields`` must be non-empty strings; ``optional`` fields, when present, must be strings.
    """
    path, text = read_text(path)
    for lineno, row in json_objects(path, text):
        for name in fields:
            if name not in row:
                raise DataError("missing", path=display_path(path), line=lineno, field=name)
            value = row[name]
            if not isinstance(value, str) or not value.strip():
                raise DataError(f"must be a non-empty string, got {shown(value)}",
                                path=display_path(path), line=lineno, field=name)
        for name in optional:
            if name in row and not isinstance(row[name], str):
                raise DataError(f"must be a string, got {shown(row[name])}",
                                path=display_path(path), line=lineno, field=name)
        yield lineno, row


def _templates(rid: str, path: Path) -> list[Template]:
    """The relation's distinct templates in file order."""
    seen: dict[str, Template] = {}
    for lineno, row in _rows(path, ("pattern",)):
        pattern = row["pattern"]
        problem = template_problem(pattern)
        if problem:
            raise DataError(problem, path=display_path(path), line=lineno, field="pattern")
        seen.setdefault(pattern, Template(rid, pattern))
    return list(seen.values())


def _facts(rid: str, path: Path) -> list[Fact]:
    """The relation's facts in file order."""
    return [Fact(rid, row["sub_label"], row["obj_label"], row.get("uuid", ""))
            for _, row in _rows(path, ("sub_label", "obj_label"), optional=("uuid",))]


def _labels(root: Path) -> dict[str, str]:
    """Relation labels: Wikidata's, overridden by ``relations.json`` where the directory has one."""
    labels = dict(WIKIDATA_LABELS)
    for candidate in (root / "relations.json", root / "data" / "relations.json"):
        if candidate.is_file():
            path, text = read_text(candidate)
            data = json_value(text, path)
            if not isinstance(data, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
                raise DataError("expected a JSON object mapping relation id to label",
                                path=display_path(candidate))
            labels.update(data)
            break
    return labels


SAMPLES = ("random", "first")
"""How ``max_facts`` picks a relation's facts: a seeded random sample, or the file's first N."""


def sample_facts(rid: str, facts: list[Fact], max_facts: int | None, sample: str = "random",
                 seed: int = 0) -> tuple[list[Fact], str]:
    """At most ``max_facts`` of ``facts`` and a description of how they were taken.

    ``"random"``: a uniform sample without replacement drawn by
    ``numpy.random.default_rng([seed, crc32(relation id)])`` (so each relation gets its own
    stream and the sample of one relation does not depend on which others are loaded), kept in
    file order; ``"first"``: the first ``max_facts`` facts of the file (ParaRel's files list
    famous facts first, so this sample is easier than the relation). All facts when
    ``max_facts`` is None or not smaller than their number.
    """
    if max_facts is None or max_facts >= len(facts):
        return list(facts), ""
    if sample == "first":
        return list(facts[:max_facts]), f"first {max_facts} of {len(facts)}"
    rng = np.random.default_rng([seed, zlib.crc32(rid.encode())])
    keep = np.sort(rng.choice(len(facts), size=max_facts, replace=False))
    return [facts[i] for i in keep], f"random {max_facts} of {len(facts)} (seed {seed})"


def _check_sampling(max_facts, sample, seed) -> None:
    if max_facts is not None and (isinstance(max_facts, bool) or not isinstance(max_facts, int)
                                  or max_facts < 1):
        raise TunescopeError(f"max_facts must be a positive integer, got {shown(max_facts)}")
    if sample not in SAMPLES:
        raise TunescopeError(f"unknown fact sample {shown(sample)}; use 'random' (seeded) or "
                             "'first' (file order)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TunescopeError(f"seed must be a non-negative integer, got {shown(seed)}")


def load_pararel(path: str | os.PathLike, relations: Iterable[str] | str | None = None,
                 max_facts: int | None = None, y_last_only: bool = False,
                 sample: str = "random", seed: int = 0) -> list[Relation]:
    """Read a ParaRel directory (flat or repository layout) and return its relations.

    Returns one :class:`Relation` per relation id that has both templates and facts, in the
    order of ``relations`` when given, else by id number. Templates are deduplicated;
    ``max_facts`` keeps N facts of each relation, a seeded random sample by default
    (``sample="first"``: the file's first N; see :func:`sample_facts`), while each relation's
    ``candidates`` stay all the objects of its fact file; ``y_last_only`` keeps the templates
    whose ``[Y]`` is last (a relation left with none is skipped with a warning).
    Raises :class:`DataError` for a missing or malformed directory, file or line.
    """
    _check_sampling(max_facts, sample, seed)
    root = Path(path).expanduser()
    pat_dir, tup_dir = _layout(root)
    pat_files, tup_files = _jsonl_files(pat_dir), _jsonl_files(tup_dir)
    available = sorted(set(pat_files) & set(tup_files), key=_id_key)
    if not available:
        raise DataError(f"no relation has both a template file in {pat_dir.name}/ and a fact "
                        f"file in {tup_dir.name}/", path=display_path(root))
    wanted = _wanted(relations, pat_files, tup_files, available, root, pat_dir, tup_dir)
    labels = _labels(root)
    out = []
    for rid in wanted:
        templates = _templates(rid, pat_files[rid])
        if not templates:
            raise DataError(f"relation {display_path(rid)} has no templates",
                            path=display_path(pat_files[rid]))
        facts = _facts(rid, tup_files[rid])
        if not facts:
            raise DataError(f"relation {display_path(rid)} has no facts",
                            path=display_path(tup_files[rid]))
        if y_last_only:
            templates = [t for t in templates if t.y_last]
            if not templates:
                warnings.warn(f"ParaRel relation {rid}: no template ends with [Y]; skipped",
                              stacklevel=2)
                continue
        candidates = tuple(dict.fromkeys(f.object for f in facts))
        facts, sampling = sample_facts(rid, facts, max_facts, sample, seed)
        out.append(Relation(rid, tuple(templates), tuple(facts), labels.get(rid, ""),
                            candidates, sampling))
    if not out:
        raise DataError("no relation has a template that ends with [Y]", path=display_path(root))
    return out


def relation_lines(path: str | os.PathLike, relation_id: str
                   ) -> tuple[Path, dict[str, int], Path, dict[tuple[str, str], int]]:
    """Where relation ``relation_id`` of the ParaRel directory ``path`` comes from: its template
    file with the first line of each pattern, and its fact file with the first line of each
    ``(subject, object)`` (1-based lines, files read as :func:`load_pararel` reads them)."""
    root = Path(path).expanduser()
    pat_dir, tup_dir = _layout(root)
    pat_file = _jsonl_files(pat_dir).get(relation_id)
    tup_file = _jsonl_files(tup_dir).get(relation_id)
    if pat_file is None or tup_file is None:
        raise DataError(f"unknown relation {shown(relation_id)}", path=display_path(root))
    patterns: dict[str, int] = {}
    for lineno, row in _rows(pat_file, ("pattern",)):
        patterns.setdefault(row["pattern"], lineno)
    facts: dict[tuple[str, str], int] = {}
    for lineno, row in _rows(tup_file, ("sub_label", "obj_label"), optional=("uuid",)):
        facts.setdefault((row["sub_label"], row["obj_label"]), lineno)
    return pat_file, patterns, tup_file, facts


def builtin_pararel_path() -> Path:
    """The directory of the built-in mini ParaRel shipped with tunescope (flat layout)."""
    return Path(str(resources.files("tunescope.data").joinpath("builtin", "pararel")))


def pararel(relations: Iterable[str] | str | None = None, path: str | os.PathLike | None = None,
            max_facts: int | None = None, y_last_only: bool = True, sample: str = "random",
            seed: int = 0) -> list[Relation]:
    """ParaRel relations from ``path``, or from the built-in mini set when ``path`` is None.

    Returns the list of :class:`Relation` that :func:`load_pararel` gives; by default only the
    templates with ``[Y]`` last are kept (the ones a causal LM can score).
    """
    root = builtin_pararel_path() if path is None else path
    return load_pararel(root, relations=relations, max_facts=max_facts, y_last_only=y_last_only,
                        sample=sample, seed=seed)


def _download(url: str, target: Path, timeout: float) -> None:
    """Fetch ``url`` into ``target`` through a temporary file renamed on success."""
    tmp = target.with_name(f".{target.name}.part")
    hint = ("download it yourself (git clone https://github.com/yanaiela/pararel) and pass the "
            "local directory as the ParaRel path instead")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as fh:
            while chunk := response.read(1 << 16):
                fh.write(chunk)
    except urllib.error.HTTPError as e:
        tmp.unlink(missing_ok=True)
        raise TunescopeError(f"ParaRel download failed: {url}: HTTP {e.code} {e.reason}; "
                             f"{hint}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError,
            http.client.HTTPException) as e:
        tmp.unlink(missing_ok=True)
        reason = getattr(e, "reason", e)
        msg = " ".join(str(reason).split()) or type(e).__name__
        raise TunescopeError(f"ParaRel download failed: {url}: {msg}; {hint}") from None
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {tmp}: {e.strerror or e}") from None
    os.replace(tmp, target)


def pull_pararel(dest: str | os.PathLike, base_url: str = DEFAULT_URL,
                 relations: Iterable[str] | None = None, timeout: float = 60.0) -> Path:
    """Download ParaRel's templates and facts into ``dest`` in the flat layout.

    Fetches ``data/pattern_data/graphs_json/P<id>.jsonl`` and ``data/trex_lms_vocab/P<id>.jsonl``
    under ``base_url`` for each relation id (default: :data:`PARAREL_RELATIONS`), writes them to
    ``dest/patterns/`` and ``dest/tuples/``, validates the result with :func:`load_pararel` and
    returns ``dest``. A network failure raises a one-line :class:`TunescopeError`.
    """
    ids = list(dict.fromkeys(PARAREL_RELATIONS if relations is None else
                             ([relations] if isinstance(relations, str) else relations)))
    if not ids:
        raise TunescopeError("no relations to download (empty list)")
    for rid in ids:
        if not isinstance(rid, str) or not _PULL_ID.fullmatch(rid):
            raise TunescopeError(f"invalid ParaRel relation id {rid!r} "
                                 "(expected P followed by digits)")
    if not base_url.lower().startswith(("http://", "https://")):
        raise TunescopeError("ParaRel base URL must start with http:// or https://, "
                             f"got {base_url!r}")
    base = base_url if base_url.endswith("/") else base_url + "/"
    dest = Path(dest).expanduser()
    try:
        (dest / "patterns").mkdir(parents=True, exist_ok=True)
        (dest / "tuples").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create ParaRel directory {dest}: {e.strerror or e}") from None
    root = dest.resolve()
    for rid in ids:
        for remote, local in (("data/pattern_data/graphs_json", "patterns"),
                              ("data/trex_lms_vocab", "tuples")):
            target = dest / local / f"{rid}.jsonl"
            if root not in target.resolve().parents:
                raise TunescopeError(f"refusing to write outside {dest}: {target}")
            _download(f"{base}{remote}/{rid}.jsonl", target, timeout)
    load_pararel(dest, relations=ids)
    return dest
