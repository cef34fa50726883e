"""Base-vs-tuned statistics over Results: differences, bootstrap intervals and the tests of
docs/methods.md#comparisons, as one tidy table per analysis.

::

    from tunescope.compare import compare_results, compare_study, COLUMNS
    table = compare_results(base_result, tuned_result, n_boot=1000, seed=0)
    study = compare_study({"base": r0, "tuned-a": r1, "tuned-b": r2}, base="base")

One comparer per analysis, in a module of the analysis' name, registered by that name
(:mod:`tunescope.compare.registry`); importing this package imports every module in it, so a
new comparer module needs no other edit.
"""

from tunescope.common.modules import import_all
from tunescope.compare.core import compare_results, compare_study, compare_variants
from tunescope.compare.registry import COMPARERS, comparer
from tunescope.compare.table import COLUMNS

import_all(__name__, __path__)     # every comparer module registers itself

__all__ = ["COLUMNS", "COMPARERS", "compare_results", "compare_study", "compare_variants",
           "comparer"]
