"""Base-vs-tuned statistics over Results: differences, bootstrap intervals and the tests of
METHODS.md, as one tidy table per analysis.

::

    from tunescope.compare import compare_results, compare_study, COLUMNS
    table = compare_results(base_result, tuned_result, n_boot=1000, seed=0)
    study = compare_study({"base": r0, "tuned-a": r1, "tuned-b": r2}, base="base")

One comparer per analysis, registered by the analysis' name (:mod:`tunescope.compare.registry`);
importing this package registers them all.
"""

from tunescope.compare.core import compare_results, compare_study, compare_variants
from tunescope.compare.registry import COMPARERS, comparer
from tunescope.compare.table import COLUMNS
from tunescope.compare import (  # noqa: F401  (registers the comparers)
    attribution, downstream, ffn, heads, prediction, predictions, recall, representation)

__all__ = ["COLUMNS", "COMPARERS", "compare_results", "compare_study", "compare_variants",
           "comparer"]
