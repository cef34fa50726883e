"""Token heatmaps: a prompt's tokens shaded by a per-token value (e.g. W1 density), as HTML.

Every piece of text is HTML-escaped; the output is a fragment with inline styles only (no
scripts, no external resources), safe to embed in the self-contained report.
"""

from __future__ import annotations

import html
from collections.abc import Sequence


def token_heatmap(tokens: Sequence[str], values: Sequence[float],
                  instruction: Sequence[bool] | None = None, title: str = "") -> str:
    """An HTML ``<div>`` showing each token on a background whose opacity is its value in
    [0, 1] (NaN and negatives show as 0); instruction tokens are underlined. Newlines in tokens
    become line breaks."""
    if len(tokens) != len(values) or (instruction is not None and len(instruction) != len(tokens)):
        raise ValueError("tokens, values and instruction flags must have the same length")
    spans = []
    for i, (tok, value) in enumerate(zip(tokens, values)):
        alpha = 0.0 if not value == value else min(max(float(value), 0.0), 1.0)
        style = f"background: rgba(214, 39, 40, {alpha:.3f});"
        if instruction is not None and instruction[i]:
            style += " text-decoration: underline; text-decoration-color: #1f77b4;"
        text = html.escape(tok).replace("\n", "<br>")
        spans.append(f'<span class="tok" style="{style}" title="{alpha:.2f}">{text}</span>')
    head = f'<div class="heatmap-title">{html.escape(title)}</div>' if title else ""
    return (f'<div class="token-heatmap" style="white-space: pre-wrap; font-family: monospace; '
            f'line-height: 1.6;">{head}{"".join(spans)}</div>')
