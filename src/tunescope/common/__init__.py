"""Neutral utilities every layer may import (they import nothing else of tunescope but
:mod:`tunescope.errors`): the cache directory (:mod:`~tunescope.common.paths`), progress bars
(:mod:`~tunescope.common.progress`), atomic writes and owned temporary names
(:mod:`~tunescope.common.atomic`), the run-directory lock (:mod:`~tunescope.common.lock`) and
pausing the cycle collector (:mod:`~tunescope.common.gc_pause`)."""
