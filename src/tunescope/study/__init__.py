"""Studies: models x analyses x datasets, run into a resumable run directory.

    import tunescope as ts
    study = ts.Study(base="gemma-3-270m", tuned=["smollm2-135m-instruct"],
                     analyses=["consistency", "recall"])
    run = study.run("runs/x")          # run.report: runs/x/report.html

Pieces: :mod:`~tunescope.study.spec` (resolve and fingerprint a spec),
:mod:`~tunescope.study.store` (the run directory), :mod:`~tunescope.study.local_executor` and
:mod:`~tunescope.study.ray_executor` (executors), :mod:`~tunescope.study.default_study` (the default
study).
"""

from tunescope.study.analysis_entries import GROUPS
from tunescope.study.runner import Study, StudyRun, rebuild_report
from tunescope.study.spec import StudySpec, from_yaml, resolve

__all__ = ["GROUPS", "Study", "StudyRun", "StudySpec", "from_yaml", "rebuild_report", "resolve"]
