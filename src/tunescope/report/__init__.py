"""Report: Results -> figures and a self-contained HTML report.

``render_report`` builds the page as a string, ``write_report`` writes it atomically;
``token_heatmap`` shades a prompt's tokens (used for W1's example prompts).
"""

from tunescope.report.heatmap import token_heatmap
from tunescope.report.page import render_report, write_report

__all__ = ["render_report", "token_heatmap", "write_report"]
