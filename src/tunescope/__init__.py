"""tunescope: what did instruction tuning change in a language model?

    import tunescope as ts
    lm = ts.load("gemma-3-270m")        # bundled name, hub id, local directory or .gguf file
    ts.engine.top_predictions(lm, ["The capital of France is"])
    study = ts.Study(base="gemma-3-270m", tuned=["smollm2-135m-instruct"], analyses=["recall"])
    study.run("runs/x")                 # resumable; runs/x/report.html
"""

from tunescope._version import __version__  # noqa: F401 (the package version)

__all__ = ["LM", "Result", "Study", "TuneConfig", "TunescopeError", "analyses", "data", "engine",
           "load", "tune"]

_LAZY = {"analyses": ("tunescope.analyses", None), "data": ("tunescope.data", None),
         "engine": ("tunescope.engine", None), "LM": ("tunescope.models", "LM"),
         "load": ("tunescope.models", "load"), "Result": ("tunescope.result", "Result"),
         "Study": ("tunescope.study", "Study"),
         "TunescopeError": ("tunescope.errors", "TunescopeError"),
         "tune": ("tunescope.tuning", "tune"), "TuneConfig": ("tunescope.tuning", "TuneConfig")}
"""The public names, imported on first use (PEP 562) as ``(module, attribute or None)``: most
pull in torch, transformers and pandas, and the console script imports this package before it
can handle Ctrl-C, so importing it runs nothing (see :mod:`tunescope._entry`)."""


def __getattr__(name: str):
    """Import a public name of :data:`_LAZY` on first access (then it is a plain attribute)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'tunescope' has no attribute {name!r}")
    import importlib

    module, attribute = _LAZY[name]
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
