"""What every analysis section of the report shares: the context it is drawn from, the registry
of section renderers, and the parts around the figures (missing models, summary numbers, the
comparison table).

A renderer is a function ``(Context) -> list[str]`` of HTML parts (figures, tables, notes),
registered with :func:`section`. An analysis without a renderer gets :func:`generic_parts`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tunescope.models.depth import relative_depth
from tunescope.report import figures
from tunescope.report.markup import details, esc, figure, heading, note, slug, table
from tunescope.result import Result, flags

COMPARISON_COLUMNS = ["model", "metric", "key", "depth", "base", "tuned", "difference", "95% CI",
                      "test", "statistic", "p_value", "n_base", "n_tuned"]
"""Columns of the comparison tables as shown (``95% CI`` joins ``ci_low`` and ``ci_high``)."""


@dataclass
class Context:
    """Everything one analysis section is drawn from.

    Attributes:
        analysis: the analysis name.
        results: ``{model key: Result}`` of the models that have one, in study order.
        models: every model of the study (``key``, ``role``, ``spec``, ``metadata``), in order.
        comparison: the analysis' comparison table (``["model", *compare.COLUMNS]``), or empty.
        colors: colour per model key.
        statuses: job status per model key for this analysis (from ``run_info``), if known.
    """

    analysis: str
    results: dict[str, Result]
    models: list[dict]
    comparison: pd.DataFrame
    colors: dict[str, str]
    statuses: dict[str, str] = field(default_factory=dict)

    def tables(self, name: str) -> dict[str, pd.DataFrame]:
        """``{model key: table}`` of the models whose Result has a non-empty table ``name``."""
        out = {}
        for key, res in self.results.items():
            frame = res.tables.get(name)
            if frame is not None and len(frame):
                out[key] = frame
        return out

    def n_layers(self, key: str) -> int | None:
        """The model's number of blocks, from its Result's provenance or the study's metadata."""
        res = self.results.get(key)
        n = (res.provenance.get("model") or {}).get("n_layers") if res is not None else None
        if n is None:
            meta = next((m.get("metadata") or {} for m in self.models if m["key"] == key), {})
            n = meta.get("n_layers")
        return int(n) if n else None


@dataclass(frozen=True)
class Section:
    """A registered section: its title and renderer."""

    title: str
    render: Callable[[Context], list[str]]


SECTIONS: dict[str, Section] = {}


def section(name: str, title: str) -> Callable:
    """Decorator registering a renderer for analysis ``name`` under a section ``title``."""
    def wrap(fn):
        SECTIONS[name] = Section(title, fn)
        return fn
    return wrap


def plot(fig, caption: str) -> str:
    """A figure's HTML (``<figure>`` with inline SVG and caption), or a note when ``fig`` is
    None (nothing finite to draw)."""
    if fig is None:
        what = re.split(r"[:,.(]", caption, maxsplit=1)[0].strip()
        return note(f"Nothing to plot: {what[:1].lower() + what[1:]} has no finite values.")
    return figure(figures.to_svg(fig), caption)


def model_tables(ctx: Context, name: str, columns: list[str] | None = None,
                 title: str | None = None, max_rows: int = 200) -> str:
    """A collapsed block with the Result table ``name`` of every model, one under the other
    with a leading ``model`` column."""
    per_model = ctx.tables(name)
    if not per_model:
        return ""
    frame = pd.concat([t.assign(model=k) for k, t in per_model.items()], ignore_index=True)
    cols = ["model"] + [c for c in (columns or frame.columns) if c != "model"]
    return details(title or f"Table '{name}' of each model ({len(frame)} rows)",
                   table(frame, cols, max_rows=max_rows))


def summary_numbers(ctx: Context) -> str:
    """The Results' summary numbers side by side: one row per summary key, one column per
    model."""
    keys = list(dict.fromkeys(k for res in ctx.results.values() for k in res.summary
                              if k != "flags"))
    if not keys:
        return ""
    frame = pd.DataFrame({"summary": keys, **{
        model: [res.summary.get(k) for k in keys] for model, res in ctx.results.items()}})
    return details("Summary numbers of each model", table(frame, max_rows=500), open_=True)


def missing_notes(ctx: Context) -> list[str]:
    """A note for each model of the study without a Result for this analysis."""
    out = []
    for m in ctx.models:
        if m["key"] in ctx.results:
            continue
        status = ctx.statuses.get(m["key"])
        why = f" (job status: {status})" if status else " (missing or not run)"
        role = m.get("role") or "?"
        out.append(note(f"No {ctx.analysis} result for the {role} model {m['key']}{why}.",
                        "warning"))
    return out


def flag_notes(ctx: Context) -> list[str]:
    """A warning for each degenerate figure a model's Result flags (``summary["flags"]``)."""
    return [note(f"{key}: {line}", "warning") for key, res in ctx.results.items()
            for line in flags(res)]


def _with_ci(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    if "ci_low" in frame and "ci_high" in frame:
        frame["95% CI"] = [
            "–" if pd.isna(a) or pd.isna(b) else f"[{float(a):.4g}, {float(b):.4g}]"
            for a, b in zip(frame["ci_low"], frame["ci_high"])]
    return frame


def split_notes(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Notes (``"; "``-separated parts) that hold for every row of a tuned model, as lines
    ``"<model>: <part>"``, and each row's remaining parts."""
    notes = [str(n) if not pd.isna(n) else "" for n in frame.get("note", [""] * len(frame))]
    models = [str(m) for m in frame.get("model", [""] * len(frame))]
    parts = [[p for p in n.split("; ") if p] for n in notes]
    shared: dict[str, list[str]] = {}
    for model in dict.fromkeys(models):
        rows = [p for p, m in zip(parts, models) if m == model]
        common = set(rows[0]).intersection(*map(set, rows[1:])) if rows else set()
        shared[model] = [p for p in rows[0] if p in common] if rows else []
    lines = [f"{m}: {p}" if m else p for m, ps in shared.items() for p in ps]
    rest = ["; ".join(p for p in ps if p not in shared[m]) for ps, m in zip(parts, models)]
    return lines, rest


HEADLINE_ROWS = 24
"""Most comparison rows shown open; all rows are in a collapsed block below."""


def comparison_block(ctx: Context) -> str:
    """The analysis' comparison rows: caveats shared by a model's rows as warnings, then the
    headline rows (whole analysis, ``key == ""``; else the rows that are not per layer) open,
    and every row in a collapsed table."""
    frame = ctx.comparison
    bases = [m["key"] for m in ctx.models if m.get("role") == "base"]
    parts = [heading(3, "Base vs tuned")]
    if frame is None or not len(frame):
        if len(ctx.results) < 2:
            why = "fewer than two models have results"
        elif not bases:
            why = "the study names no base model"
        else:
            why = "no comparison rows were computed for this analysis"
        return "".join(parts + [note(f"No comparison table: {why}.")])
    parts.append(note(f"difference = tuned − base; 95% CI: bootstrap confidence interval of the "
                      f"difference; p_value: of the named test. Base model: "
                      f"{', '.join(bases) or '?'}."))
    lines, rest = split_notes(frame)
    parts += [note(line, "warning") for line in lines]
    shown = _with_ci(frame).assign(note=rest)

    def columns(rows: pd.DataFrame) -> list[str]:
        return COMPARISON_COLUMNS + (["note"] if (rows["note"] != "").any() else [])

    keys = shown["key"].astype(str) if "key" in shown else pd.Series("", index=shown.index)
    depth = (pd.to_numeric(shown["depth"], errors="coerce") if "depth" in shown
             else pd.Series(np.nan, index=shown.index))
    headline = shown[keys == ""]
    if not len(headline):
        headline = shown[depth.isna()]
    headline = headline.head(HEADLINE_ROWS)
    if len(headline):
        parts.append(table(headline, columns(headline), max_rows=HEADLINE_ROWS,
                           css="data compare"))
    if len(shown) > len(headline):
        parts.append(details(f"All comparison rows ({len(shown)})",
                             table(shown, columns(shown), max_rows=2000, css="data compare"),
                             open_=not len(headline) and len(shown) <= HEADLINE_ROWS))
    return "".join(parts)


def generic_parts(ctx: Context) -> list[str]:
    """The section of an analysis the report has no renderer for: its tables' sizes."""
    rows = [{"model": k, "table": name, "rows": len(t), "columns": ", ".join(map(str, t.columns))}
            for k, res in ctx.results.items() for name, t in res.tables.items()]
    parts = [note("The report has no figures for this analysis; its summary numbers and "
                  "comparison follow.")]
    if rows:
        parts.append(details("Tables of each model", table(pd.DataFrame(rows))))
    return parts


def render_section(ctx: Context, description: str = "") -> str:
    """The whole ``<section>`` of one analysis."""
    spec = SECTIONS.get(ctx.analysis)
    title = spec.title if spec else ctx.analysis
    parts = [heading(2, title)]
    if spec:
        parts.append(f'<p class="analysis-name">analysis <code>{esc(ctx.analysis)}</code></p>')
    if description:
        parts.append(f'<p class="intro">{esc(description)}</p>')
    parts += missing_notes(ctx)
    parts += flag_notes(ctx)
    if not ctx.results:
        parts.append(note("No model has results for this analysis."))
    else:
        try:
            parts += spec.render(ctx) if spec else generic_parts(ctx)
        except Exception as e:  # a malformed Result must not cost the rest of the report
            parts.append(note(f"This section could not be drawn ({type(e).__name__}: {e}); "
                              "its summary numbers follow.", "warning"))
            parts += generic_parts(ctx)
        parts.append(summary_numbers(ctx))
    parts.append(comparison_block(ctx))
    return (f'<section class="analysis" id="{esc(anchor(ctx.analysis))}">'
            f'{"".join(parts)}</section>')


def anchor(analysis: str) -> str:
    """The id of an analysis' section (for the table of contents)."""
    return slug("sec-" + analysis)


def block_depths(layers, n_layers: int | None) -> np.ndarray:
    """:func:`tunescope.models.depth.relative_depth` of block indices; 0 when the depth is
    unknown."""
    layers = np.asarray(layers, dtype=np.float64)
    if not n_layers:
        return np.zeros_like(layers)
    return relative_depth(layers, n_layers)
