"""tunescope: what did instruction tuning change in a language model?

    import tunescope as ts
    lm = ts.load("gemma-3-270m")        # bundled name, hub id, local directory or .gguf file
    ts.engine.top_predictions(lm, ["The capital of France is"])
    study = ts.Study(base="gemma-3-270m", tuned=["smollm2-135m-instruct"], analyses=["recall"])
    study.run("runs/x")                 # resumable; runs/x/report.html
"""

from tunescope import analyses, data, engine
from tunescope.errors import TunescopeError
from tunescope.models import LM, load
from tunescope.result import Result
from tunescope.study import Study

__version__ = "0.1.0"
__all__ = ["LM", "Result", "Study", "TunescopeError", "analyses", "data", "engine", "load"]
