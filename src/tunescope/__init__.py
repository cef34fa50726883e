"""tunescope: what did instruction tuning change in a language model?

    import tunescope as ts
    lm = ts.load("gemma-3-270m")        # bundled name, hub id, local directory or .gguf file
    ts.engine.top_predictions(lm, ["The capital of France is"])
"""

from tunescope import analyses, data, engine
from tunescope.errors import TunescopeError
from tunescope.models import LM, load
from tunescope.result import Result

__version__ = "0.1.0"
__all__ = ["LM", "Result", "TunescopeError", "analyses", "data", "engine", "load"]
