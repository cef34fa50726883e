"""One section per analysis, in a module of the analysis' name; importing this package imports
every module in it, so each renderer registers itself (:func:`tunescope.report.sections.base.section`)
and a new section module needs no other edit."""

from tunescope.common.modules import import_all
from tunescope.report.sections.base import SECTIONS, Context, anchor, render_section

import_all(__name__, __path__)

__all__ = ["SECTIONS", "Context", "anchor", "render_section"]
