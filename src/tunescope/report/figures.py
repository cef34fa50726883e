"""Figures for the report: matplotlib ``Figure`` objects serialised as inline SVG.

No pyplot and no global state: figures are plain :class:`matplotlib.figure.Figure` objects
drawn inside :func:`style` (an ``rc_context``) and saved through matplotlib's SVG canvas, so no
interactive backend is ever selected (headless machines, notebooks with their own backend). SVG text stays text (``svg.fonttype = "none"``),
XML-escaped by matplotlib; math-text parsing is off, so a ``$`` in a label is just a dollar
sign. Output is deterministic (fixed hash salt, no date), and every SVG id is prefixed per
figure so that many figures can live in one HTML page.

Every plotting helper takes data already reduced to what is drawn and returns a Figure, or None
when there is nothing finite to draw; the caller then writes a note instead of a figure.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import itertools
import re
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib import ticker
from matplotlib.figure import Figure

BASE_COLOR = "#333333"
TUNED_COLORS = ("#e6550d", "#3182bd", "#31a354", "#756bb1", "#d6616b", "#8c6d31", "#17becf",
                "#bcbd22", "#e377c2", "#7f7f7f")
"""Colours of the tuned models, in study order (the base model is dark grey)."""
CATEGORY_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
                   "#666666", "#1f78b4", "#b2df8a")
"""Colours of label values (e.g. concept categories) in stacked bars."""

_RC = {"svg.fonttype": "none", "svg.hashsalt": "tunescope", "text.parse_math": False,
       "text.usetex": False, "font.size": 8.5, "axes.titlesize": 9, "axes.labelsize": 8.5,
       "legend.fontsize": 7.5, "axes.spines.top": False, "axes.spines.right": False,
       "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.6}
_FIGURE_IDS: contextvars.ContextVar = contextvars.ContextVar("figure_ids",
                                                              default=itertools.count(1))
_TAG = re.compile(r"<[^>]+>")
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_ID_REFS = re.compile(r'(\bid="|url\(#|href="#)([^")]+)')


@contextlib.contextmanager
def style():
    """The report's matplotlib settings (SVG text as text, no math text, small fonts); figure
    ids restart inside, so that one report renders to the same text every time."""
    token = _FIGURE_IDS.set(itertools.count(1))
    try:
        with matplotlib.rc_context(_RC):
            yield
    finally:
        _FIGURE_IDS.reset(token)


def palette(models: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Colour per model key from ``(key, role)`` pairs: base dark grey, tuned in order."""
    colors, tuned = {}, itertools.cycle(TUNED_COLORS)
    for key, role in models:
        colors[key] = BASE_COLOR if role == "base" else next(tuned)
    return colors


def label(text: str, limit: int = 40) -> str:
    """Text safe as a matplotlib label: matplotlib hides legend labels starting with ``_``,
    so those get a leading space; long text is cut at ``limit`` characters."""
    text = str(text)
    if len(text) > limit:
        text = text[:limit - 1] + "…"
    return " " + text if text.startswith("_") else text


def to_svg(fig: Figure) -> str:
    """The figure as an ``<svg>`` element (no XML prolog), ids made unique in the page."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", pad_inches=0.05,
                metadata={"Date": None})
    text = buf.getvalue()
    text = _METADATA.sub("", text[text.index("<svg"):], count=1)
    prefix = f"f{next(_FIGURE_IDS.get())}-"
    return _TAG.sub(lambda m: _ID_REFS.sub(lambda r: r.group(1) + prefix + r.group(2), m.group(0)),
                    text)


def legend(fig: Figure, axes, loc: str = "outside upper center", ncols: int | None = None) -> None:
    """One legend for the whole figure with every distinct label of ``axes``, outside the
    panels (so it never hides data)."""
    handles, labels = [], []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            lab = label(lab, 36)
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc=loc, frameon=False,
                   ncols=ncols or min(len(labels), 4))


def _plain_log_ticks(ax) -> None:
    """Log-axis tick labels as plain numbers (math text is off, so the default 10^k labels
    would show their markup)."""
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(ticker.LogFormatter(labelOnlyBase=False,
                                                     minor_thresholds=(1, 0.6)))


def _rotate(labels: Sequence[str]) -> bool:
    """Whether category tick labels need rotating to stay apart."""
    return len(labels) > 8 or sum(len(t) + 2 for t in labels) > 48


def grid(n_panels: int, ncols: int = 3, width: float = 3.8, height: float = 2.8,
         sharex: bool = False) -> tuple[Figure, list]:
    """A figure with ``n_panels`` axes in rows of ``ncols`` (unused cells removed)."""
    ncols = max(1, min(ncols, n_panels))
    nrows = -(-n_panels // ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=sharex).ravel().tolist()
    for ax in axes[n_panels:]:
        ax.remove()
    return fig, axes[:n_panels]


def _finite(values) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    return arr[np.isfinite(arr)]


def line_panels(panels: Sequence[tuple[str, Mapping[str, Mapping[str, Sequence[float]]]]],
                colors: Mapping[str, str], ylabel: str, xlabel: str = "relative depth",
                reference: float | None = None, logy: bool = False,
                ylim: tuple[float, float] | None = None, ncols: int = 3) -> Figure | None:
    """One axes per panel ``(title, {model: {"x": [...], "y": [...], "low": [...],
    "high": [...]}})``: a line per model (markers at the points), a shaded band between
    ``low`` and ``high`` when given, a dotted horizontal line at ``reference``."""
    if not any(len(_finite(s["y"])) for _, per_model in panels for s in per_model.values()):
        return None
    fig, axes = grid(len(panels), ncols)
    for ax, (title, per_model) in zip(axes, panels):
        for model, series in per_model.items():
            x = np.asarray(series["x"], dtype=np.float64)
            y = np.asarray(series["y"], dtype=np.float64)
            order = np.argsort(x, kind="stable")
            x, y = x[order], y[order]
            if logy:
                y = np.where(y > 0, y, np.nan)
            color = colors.get(model, BASE_COLOR)
            ax.plot(x, y, marker="o", markersize=2.5, linewidth=1.4, color=color,
                    label=label(model))
            if series.get("low") is not None and series.get("high") is not None:
                low = np.asarray(series["low"], dtype=np.float64)[order]
                high = np.asarray(series["high"], dtype=np.float64)[order]
                ok = np.isfinite(low) & np.isfinite(high)
                if ok.any():
                    ax.fill_between(x, np.where(ok, low, np.nan), np.where(ok, high, np.nan),
                                    color=color, alpha=0.15, linewidth=0)
        if reference is not None:
            ax.axhline(reference, color="#888888", linestyle=":", linewidth=1)
        if logy:
            ax.set_yscale("log")
            _plain_log_ticks(ax)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_title(label(title, 48))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    legend(fig, axes)
    return fig


def grouped_bars(panels: Sequence[tuple[str, Sequence[str], Mapping[str, Sequence[float]]]],
                 colors: Mapping[str, str], ylabel: str, ylim: tuple[float, float] | None = None,
                 ncols: int = 2, reference: float | None = None) -> Figure | None:
    """One axes per panel ``(title, categories, {model: value per category})``: for each
    category a group of bars, one per model (NaN: no bar)."""
    if not any(len(_finite(v)) for _, _, per_model in panels for v in per_model.values()):
        return None
    widest = max(len(cats) for _, cats, _ in panels)
    per_panel = max(3.8, min(0.3 * widest * max(len(p[2]) for p in panels) + 1.5, 14))
    fig, axes = grid(len(panels), ncols if per_panel < 6 else 1, width=per_panel, height=3.0)
    for ax, (title, categories, per_model) in zip(axes, panels):
        n = max(len(per_model), 1)
        width = 0.8 / n
        x = np.arange(len(categories))
        for i, (model, values) in enumerate(per_model.items()):
            ax.bar(x - 0.4 + width * (i + 0.5), np.asarray(values, dtype=np.float64), width,
                   color=colors.get(model, BASE_COLOR), label=label(model))
        names = [label(c, 24) for c in categories]
        turn = _rotate(names)
        ax.set_xticks(x, names, rotation=35 if turn else 0, ha="right" if turn else "center",
                      rotation_mode="anchor" if turn else "default")
        if reference is not None:
            ax.axhline(reference, color="#888888", linestyle=":", linewidth=1)
        if ylim is not None:
            ax.set_ylim(*ylim)
        ax.set_title(label(title, 48))
        ax.set_ylabel(ylabel)
        ax.grid(axis="x", visible=False)
    legend(fig, axes)
    return fig


def box_strip(groups: Mapping[str, Sequence[float]], colors: Mapping[str, str], ylabel: str,
              seed: int = 0) -> Figure | None:
    """A box per model (median, quartiles, 1.5 IQR whiskers) with every value drawn as a
    jittered point on top (jitter from a fixed seed)."""
    data = {k: _finite(v) for k, v in groups.items()}
    if not any(len(v) for v in data.values()):
        return None
    fig = Figure(figsize=(max(3.8, 1.3 * len(data) + 1.5), 3.0), layout="constrained")
    ax = fig.subplots()
    rng = np.random.default_rng(seed)
    names = list(data)
    for i, name in enumerate(names):
        values = data[name]
        if not len(values):
            continue
        color = colors.get(name, BASE_COLOR)
        ax.boxplot([values], positions=[i], widths=0.5, showfliers=False,
                   medianprops={"color": color, "linewidth": 1.6},
                   boxprops={"color": color}, whiskerprops={"color": color},
                   capprops={"color": color})
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(values)), values, s=14, color=color,
                   alpha=0.7, linewidths=0, zorder=3)
    ticks = [label(n, 24) for n in names]
    turn = _rotate(ticks)
    ax.set_xticks(range(len(names)), ticks, rotation=25 if turn else 0,
                  ha="right" if turn else "center", rotation_mode="anchor" if turn else "default")
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylabel(ylabel)
    ax.grid(axis="x", visible=False)
    return fig


def stacked_shares(panels: Sequence[tuple[str, Sequence[str], Mapping[str, Sequence[float]]]],
                   ylabel: str = "share", ncols: int = 2) -> Figure | None:
    """One axes per panel ``(title, groups, {value: share per group})``: a stacked bar per
    group whose segments are the values' shares (summing to 1 per group)."""
    if not any(len(_finite(v)) for _, _, shares in panels for v in shares.values()):
        return None
    values = list(dict.fromkeys(v for _, _, shares in panels for v in shares))
    color_of = {v: CATEGORY_COLORS[i % len(CATEGORY_COLORS)] for i, v in enumerate(values)}
    fig, axes = grid(len(panels), ncols, width=3.8, height=2.6)
    for ax, (title, groups, shares) in zip(axes, panels):
        bottom = np.zeros(len(groups))
        for value, share in shares.items():
            share = np.nan_to_num(np.asarray(share, dtype=np.float64))
            ax.bar(np.arange(len(groups)), share, 0.7, bottom=bottom, color=color_of[value],
                   label=label(value))
            bottom += share
        ax.set_xticks(range(len(groups)), [label(g, 16) for g in groups])
        ax.set_ylim(0, 1.02)
        ax.set_title(label(title, 48))
        ax.set_ylabel(ylabel)
        ax.grid(axis="x", visible=False)
    legend(fig, axes, "outside right upper", ncols=1)
    return fig
