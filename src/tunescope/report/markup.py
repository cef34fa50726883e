"""Small HTML builders for the report. Every piece of text goes through :func:`esc`.

Nothing here emits a script, an event handler or an external reference: the report is static
HTML with inline styles and inline SVG.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

MISSING = "–"
"""How an undefined number (NaN, None) is shown."""


def esc(value) -> str:
    """``value`` as text, HTML-escaped for element content and quoted attributes alike."""
    return html.escape(str(value), quote=True)


def slug(text: str) -> str:
    """An id-safe version of ``text`` (letters, digits, ``-``, ``_``), for anchors."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-") or "section"


def is_missing(value) -> bool:
    """True for None, NaN, pandas NA and NaT."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _rounded(value, digits: int):
    """Floats inside (nested) containers cut to ``digits`` significant digits."""
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v, digits) for v in value]
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.{digits}g}")
    return value


def fmt(value, digits: int = 4, limit: int = 160) -> str:
    """A number or value as short, escaped text: floats with ``digits`` significant digits,
    NaN as :data:`MISSING`, containers as compact JSON cut at ``limit`` characters."""
    if isinstance(value, (dict, list, tuple)):
        text = json.dumps(_rounded(value, digits), default=str, ensure_ascii=False,
                          separators=(", ", ": "))
        if len(text) > limit:
            text = text[:limit - 1] + "…"
        return esc(text)
    if isinstance(value, np.ndarray):
        return fmt(value.tolist(), digits, limit)
    if is_missing(value):
        return MISSING
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        x = float(value)
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
        if x != 0 and (abs(x) >= 10 ** digits or abs(x) < 10 ** -(digits - 1)):
            return f"{x:.{digits - 1}e}"
        return f"{x:.{digits}g}"
    text = str(value)
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return esc(text)


def table(frame: pd.DataFrame, columns: Sequence[str] | None = None, max_rows: int = 200,
          css: str = "data") -> str:
    """An HTML ``<table>`` of ``frame`` (``columns`` in that order, those present), at most
    ``max_rows`` rows with a note on how many more there were. Headers and cells are escaped."""
    if columns is not None:
        frame = frame[[c for c in columns if c in frame.columns]]
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in frame.columns]
    rows = []
    for values in frame.head(max_rows).itertuples(index=False, name=None):
        cells = "".join(f'<td class="num">{fmt(v)}</td>' if num else f"<td>{fmt(v)}</td>"
                        for v, num in zip(values, numeric))
        rows.append(f"<tr>{cells}</tr>")
    more = ""
    if len(frame) > max_rows:
        more = f'<p class="more">{len(frame) - max_rows} more rows not shown.</p>'
    return (f'<div class="table-wrap"><table class="{esc(css)}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>{more}')


def key_value_table(pairs: Iterable[tuple[str, object]]) -> str:
    """A two-column table of (name, value) rows."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{fmt(v)}</td></tr>" for k, v in pairs)
    return f'<div class="table-wrap"><table class="kv"><tbody>{rows}</tbody></table></div>'


def figure(svg: str, caption: str) -> str:
    """A ``<figure>`` holding an inline SVG (made by :mod:`tunescope.report.figures`, whose
    text is already XML-escaped) and an escaped caption."""
    return f'<figure class="plot">{svg}<figcaption>{esc(caption)}</figcaption></figure>'


def note(text: str, kind: str = "note") -> str:
    """A short escaped paragraph; ``kind`` ``"note"`` or ``"warning"``."""
    return f'<p class="{esc(kind)}">{esc(text)}</p>'


def details(summary: str, body: str, open_: bool = False) -> str:
    """A collapsible block with an escaped ``summary`` line and an HTML ``body``."""
    attr = " open" if open_ else ""
    return f"<details{attr}><summary>{esc(summary)}</summary>{body}</details>"


def heading(level: int, text: str, anchor: str | None = None) -> str:
    """``<hN>`` with escaped text and an optional (slugged) id."""
    ident = f' id="{esc(slug(anchor))}"' if anchor else ""
    return f"<h{level}{ident}>{esc(text)}</h{level}>"
