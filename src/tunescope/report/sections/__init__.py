"""One section per analysis; importing this package registers every renderer."""

from tunescope.report.sections import behaviour, consistency, recall  # noqa: F401
from tunescope.report.sections.base import SECTIONS, Context, anchor, render_section

__all__ = ["SECTIONS", "Context", "anchor", "render_section"]
