"""Analyses: one module per analysis, each ``(LM, dataset, config) -> Result``, registered by
name (see :mod:`tunescope.analyses.registry`). Importing this package imports every module in it,
so each analysis registers itself (a new analysis module needs no other edit), and makes each
registered analysis available here under its name (``tunescope.analyses.attribution(lm, ...)``).
Parts several analyses share are in :mod:`tunescope.analyses.helpers`."""

from tunescope.analyses.registry import REGISTRY, Analysis, get, register
from tunescope.common.modules import import_all

import_all(__name__, __path__)
globals().update({name: analysis.run for name, analysis in REGISTRY.items()})

__all__ = ["REGISTRY", "Analysis", "get", "register", *sorted(REGISTRY)]
