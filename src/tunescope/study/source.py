"""Where each value of a study spec came from, so that errors can name the file and line.

A study is given as YAML (a file or text) or as Python values (CLI flags, ``Study(...)``).
:func:`parse_yaml` turns YAML into plain Python values and a :class:`Source` that maps each
value's path (``("analyses", "attribution", "max_new_tokens")``) to its line; :meth:`Source.error`
builds the one-line :class:`~tunescope.errors.DataError` for a path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from tunescope.errors import DataError

Path = tuple  # a path into the spec: keys (str) and list indices (int)


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
        field_name = dotted(path) or None
        if self.name is None:
            return DataError(f"study {field_name + ': ' if field_name else ''}{message}")
        return DataError(message, path=self.name, line=self.line(path), field=field_name)




_SEQ, _MAP = "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"


def _scalar(loader: yaml.SafeLoader, node: yaml.ScalarNode):
    return loader.construct_object(node, deep=True)


def _convert(loader, node, path: Path, lines: dict, name: str | None, depth: int = 0):
    lines[path] = node.start_mark.line + 1
    if depth > 50:
        raise Source(name, lines).error(path, "nested too deeply")
    if isinstance(node, yaml.ScalarNode):
        return _scalar(loader, node)
    if node.tag not in (_SEQ, _MAP):
        raise DataError(f"malformed YAML: tag {node.tag!r} is not allowed in a study", path=name,
                        line=node.start_mark.line + 1)
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
                                                f"a key must be a name, got {key!r}")
            if key in out:
                lines[path + (key,)] = key_node.start_mark.line + 1
                raise Source(name, lines).error(path + (key,), "key given twice")
            out[key] = _convert(loader, value_node, path + (key,), lines, name, depth + 1)
        return out
    raise Source(name, lines).error(path, f"unsupported YAML node {type(node).__name__}")


def parse_yaml(text: str, name: str | None = "<study>") -> tuple[object, Source]:
    """Plain Python values (dicts, lists, scalars) of one YAML document, and their lines.

    Raises :class:`DataError` with the line of PyYAML's error mark for malformed YAML, and for
    what a study can never hold: non-name keys, a key given twice, several documents, Python tags.
    """
    lines: dict = {}
    loader = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None, Source(name, lines)
        return _convert(loader, node, (), lines, name), Source(name, lines)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = " ".join(str(x) for x in (e.context, e.problem) if x) or "malformed YAML"
        raise DataError(f"malformed YAML: {what}", path=name,
                        line=mark.line + 1 if mark is not None else None) from None
    except yaml.YAMLError as e:
        raise DataError(f"malformed YAML: {' '.join(str(e).split())}", path=name) from None
    except (RecursionError, ValueError, TypeError, OverflowError) as e:
        # RecursionError: pathological nesting; ValueError/OverflowError: e.g. a timestamp
        # outside the calendar; TypeError: unhashable merge keys.
        raise DataError(f"malformed YAML: {type(e).__name__}: {e}", path=name) from None
    finally:
        if loader is not None:
            loader.dispose()
