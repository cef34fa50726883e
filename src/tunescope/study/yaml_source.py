"""Where each value of a study spec came from, so that errors can name the file and line.

A study is given as YAML (a file or text) or as Python values (CLI flags, ``Study(...)``).
:func:`parse_yaml` turns YAML into plain Python values and a :class:`Source` that maps each
value's path (``("analyses", "attribution", "max_new_tokens")``) to its line; :meth:`Source.error`
builds the one-line :class:`~tunescope.errors.DataError` for a path.

Bounds: a study may expand to at most :data:`MAX_VALUES` values and :data:`MAX_CHARS`
characters of text, YAML aliases counted in full at every use (:func:`check_size`, run on the
composed YAML before anything is built and on Python values before they are resolved), so a
"billion laughs" alias bomb is refused in milliseconds; every user value an error message
echoes goes through :func:`quoted` (at most :data:`QUOTE_LIMIT` characters, at a cost that does
not grow with the value) and every message is cut to :data:`MESSAGE_LIMIT` characters.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass, field

import yaml

from tunescope.errors import DataError, TunescopeError

Path = tuple  # a path into the spec: keys (str) and list indices (int)

MAX_VALUES = 100_000
"""Most values (mappings, lists, keys and scalars) a study may hold, YAML aliases expanded: an
alias counts its anchor's whole value again at each use. A real study holds a few hundred; a
"billion laughs" document (ten levels of nine aliases in 1 KB) stands for 3.5 billion."""

MAX_CHARS = 1_000_000
"""Most characters of text (keys and strings, aliases expanded) a study may hold."""

MAX_DEPTH = 50
"""Deepest nesting of mappings and lists in a study."""

QUOTE_LIMIT = 60
"""Longest quotation of a user's value in an error message (characters)."""

MESSAGE_LIMIT = 500
"""Longest message of a study error (characters, without the file, line and field)."""


def _reprlib() -> reprlib.Repr:
    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 3, 4, 4, 4, 4
    r.maxstring = r.maxother = r.maxlong = QUOTE_LIMIT
    return r


_REPR = _reprlib()


def quoted(value, limit: int = QUOTE_LIMIT) -> str:
    """A user's value for an error message: its ``repr`` with :mod:`reprlib`'s limits (the
    first items of a list or mapping, three levels deep, a long string cut in the middle), then
    cut to ``limit`` characters. Always one line, and its cost does not grow with the value (an
    alias bomb of billions of items is quoted in microseconds)."""
    try:
        text = _REPR.repr(value)
    except Exception:  # noqa: BLE001 - a value whose repr fails is still named
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def clipped(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """``message`` on one line (line breaks made spaces) and at most ``limit`` characters: a
    longer one keeps its start and its end (where the hints are) around `` ... ``."""
    message = " ".join(str(message).splitlines())
    if len(message) <= limit:
        return message
    tail = limit // 3
    return f"{message[:limit - tail - 5]} ... {message[-tail:]}"


def dotted(path: Path) -> str:
    """The dotted name of a path: ``("analyses", "attribution", "max_new_tokens")`` ->
    ``"analyses.attribution.max_new_tokens"``; list indices as ``[i]`` (``tuned[0]``)."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass
class Source:
    """The origin of a spec: ``name`` (a file path, or ``None`` for Python values and flags) and
    the 1-based line of each path that came from YAML."""

    name: str | None = None
    lines: dict = field(default_factory=dict)

    def line(self, path: Path) -> int | None:
        """The line of ``path``, else of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)

    def error(self, path: Path, message: str) -> DataError:
        """A DataError naming the file, line and field (dotted path) of ``path``."""
        field_name = clipped(dotted(path), QUOTE_LIMIT) or None
        message = clipped(message)
        if self.name is None:
            return DataError(f"study {field_name + ': ' if field_name else ''}{message}")
        return DataError(message, path=self.name, line=self.line(path), field=field_name)


# --- bounds ----------------------------------------------------------------------------------

class _Oversized(Exception):
    """A value graph past a bound: ``path`` and ``node`` where it was found, and why."""

    def __init__(self, path: Path, node, message: str):
        super().__init__(message)
        self.path, self.node, self.message = path, node, message


class _Sizer:
    """The expanded size of a value graph (composed YAML nodes or plain Python values).

    ``children(node)`` yields ``(path step, child)``; ``text(node)`` is the node's own number
    of characters. A node reached again (a YAML alias, a Python object held twice) counts in
    full at every use but is measured once (memoised by identity), so measuring takes time
    linear in the distinct nodes whatever they expand to. :meth:`size` raises
    :class:`_Oversized` at the first node past :data:`MAX_VALUES` or :data:`MAX_CHARS`, nested
    deeper than :data:`MAX_DEPTH`, or holding itself."""

    def __init__(self, children, text):
        self.children, self.text = children, text
        self.sizes: dict[int, tuple[int, int]] = {}
        self.open: set[int] = set()

    def size(self, node, path: Path = (), depth: int = 0) -> tuple[int, int]:
        """``(values, characters)`` of ``node`` with every shared node expanded."""
        key = id(node)
        if key in self.sizes:
            return self.sizes[key]
        if key in self.open:
            raise _Oversized(path, node, "a value contains itself (an alias inside its own "
                                         "anchor)")
        if depth > MAX_DEPTH:
            raise _Oversized(path, node, "nested too deeply")
        self.open.add(key)
        values, chars = 1, self.text(node)
        self._check(values, chars, path, node)
        for step, child in self.children(node):
            more, text = self.size(child, path + (step,), depth + 1)
            values, chars = values + more, chars + text
            self._check(values, chars, path, node)
        self.open.discard(key)
        self.sizes[key] = (values, chars)
        return values, chars

    @staticmethod
    def _check(values: int, chars: int, path: Path, node) -> None:
        if values > MAX_VALUES:
            raise _Oversized(path, node, f"expands to more than {MAX_VALUES:,} values (a YAML "
                                         "alias, or any value used again, counts in full at "
                                         "each use); a study holds a few hundred")
        if chars > MAX_CHARS:
            raise _Oversized(path, node, f"expands to more than {MAX_CHARS:,} characters of "
                                         "text (a YAML alias, or any value used again, counts "
                                         "in full at each use)")


def _step(key) -> str | int:
    """A mapping key as a path step (a key that is no name or index shows as ``?``)."""
    return key if isinstance(key, str) or (isinstance(key, int) and not isinstance(key, bool)) \
        else "?"


def _node_children(node):
    if isinstance(node, yaml.SequenceNode):
        return enumerate(node.value)
    if isinstance(node, yaml.MappingNode):
        return ((_step(k.value) if isinstance(k, yaml.ScalarNode) else "?", child)
                for k, v in node.value for child in (k, v))
    return ()


def _node_text(node) -> int:
    return len(node.value) if isinstance(node, yaml.ScalarNode) else 0


def _value_children(value):
    if isinstance(value, dict):
        return ((_step(k), child) for k, v in value.items() for child in (k, v))
    if isinstance(value, (list, tuple)):
        return enumerate(value)
    return ()


def _value_text(value) -> int:
    return len(value) if isinstance(value, str) else 0


def _check_nodes(node: yaml.Node, name: str | None) -> None:
    """Refuse a composed YAML document past the bounds (before anything is built from it)."""
    try:
        _Sizer(_node_children, _node_text).size(node)
    except _Oversized as e:
        raise Source(name, {e.path: e.node.start_mark.line + 1}).error(e.path, e.message) \
            from None


def check_size(value, source: Source | None = None) -> None:
    """Raise the one-line DataError of ``source`` (naming the field) when plain Python values
    (a study as given to :func:`~tunescope.study.spec.resolve`) are past the bounds: more than
    :data:`MAX_VALUES` values or :data:`MAX_CHARS` characters with every shared list or mapping
    counted at each use, nested deeper than :data:`MAX_DEPTH`, or holding themselves."""
    try:
        _Sizer(_value_children, _value_text).size(value)
    except _Oversized as e:
        raise (source or Source()).error(e.path, e.message) from None


def parse_value(text: str, name: str) -> object:
    """One value given as YAML text (``--set PATH=VALUE``), read by PyYAML's safe rules as
    ``yaml.safe_load`` reads it, its size checked before it is built; text that is not valid
    YAML is the string itself. ``name`` (e.g. ``"--set analyses.x"``) starts the message of a
    value past the bounds."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError:
            return text
        if node is None:
            return None
        try:
            _Sizer(_node_children, _node_text).size(node)
        except _Oversized as e:
            raise TunescopeError(f"{name}: the value {clipped(e.message)}") from None
        try:
            return loader.construct_document(node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError):
            return text     # e.g. a date outside the calendar: taken as written
    finally:
        loader.dispose()


# --- parsing ---------------------------------------------------------------------------------

_SEQ, _MAP = "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"


def _scalar(loader: yaml.SafeLoader, node: yaml.ScalarNode):
    return loader.construct_object(node, deep=True)


def _convert(loader, node, path: Path, lines: dict, name: str | None, depth: int = 0):
    lines[path] = node.start_mark.line + 1
    if depth > MAX_DEPTH:
        raise Source(name, lines).error(path, "nested too deeply")
    if isinstance(node, yaml.ScalarNode):
        return _scalar(loader, node)
    if node.tag not in (_SEQ, _MAP):
        raise DataError(f"malformed YAML: tag {quoted(node.tag)} is not allowed in a study",
                        path=name, line=node.start_mark.line + 1)
    if isinstance(node, yaml.SequenceNode):
        return [_convert(loader, item, path + (i,), lines, name, depth + 1)
                for i, item in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)          # merge keys (<<) as PyYAML does
        out = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                lines[path + ("?",)] = key_node.start_mark.line + 1
                raise Source(name, lines).error(path + ("?",),
                                                "a key must be a plain name, not a list or mapping")
            key = _scalar(loader, key_node)
            if not isinstance(key, str):
                lines[path + (str(key),)] = key_node.start_mark.line + 1
                raise Source(name, lines).error(path + (str(key),),
                                                f"a key must be a name, got {quoted(key)}")
            if key in out:
                lines[path + (key,)] = key_node.start_mark.line + 1
                raise Source(name, lines).error(path + (key,), "key given twice")
            out[key] = _convert(loader, value_node, path + (key,), lines, name, depth + 1)
        return out
    raise Source(name, lines).error(path, f"unsupported YAML node {type(node).__name__}")


def parse_yaml(text: str, name: str | None = "<study>") -> tuple[object, Source]:
    """Plain Python values (dicts, lists, scalars) of one YAML document, and their lines.

    Raises :class:`DataError` with the line of PyYAML's error mark for malformed YAML, and for
    what a study can never hold: non-name keys, a key given twice, several documents, Python
    tags, and a document past the bounds (:data:`MAX_VALUES` values or :data:`MAX_CHARS`
    characters with every alias expanded, :data:`MAX_DEPTH` levels), which is refused from its
    composed node graph before any value is built.
    """
    lines: dict = {}
    loader = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None, Source(name, lines)
        _check_nodes(node, name)
        return _convert(loader, node, (), lines, name), Source(name, lines)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = " ".join(str(x) for x in (e.context, e.problem) if x) or "malformed YAML"
        raise DataError(f"malformed YAML: {clipped(what, 2 * QUOTE_LIMIT)}", path=name,
                        line=mark.line + 1 if mark is not None else None) from None
    except yaml.YAMLError as e:
        raise DataError(f"malformed YAML: {clipped(e, 2 * QUOTE_LIMIT)}", path=name) from None
    except (RecursionError, ValueError, TypeError, OverflowError) as e:
        # RecursionError: pathological nesting; ValueError/OverflowError: e.g. a timestamp
        # outside the calendar; TypeError: unhashable merge keys.
        what = clipped(e, 2 * QUOTE_LIMIT)
        raise DataError(f"malformed YAML: {type(e).__name__}: {what}", path=name) from None
    finally:
        if loader is not None:
            loader.dispose()
