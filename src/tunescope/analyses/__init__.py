"""Analyses: one module per analysis, each ``(LM, dataset, config) -> Result``, registered by
name (see :mod:`tunescope.analyses.registry`)."""

from tunescope.analyses.registry import REGISTRY, Analysis, get, register

__all__ = ["REGISTRY", "Analysis", "get", "register"]

from tunescope.analyses.predictions import next_token_predictions  # noqa: E402  (registers)

__all__ += ["next_token_predictions"]
from tunescope.analyses.prediction_consistency import prediction_consistency  # noqa: E402

__all__ += ["prediction_consistency"]

from tunescope.analyses.downstream import downstream_consistency  # noqa: E402  (registers)

__all__ += ["downstream_consistency"]
from tunescope.analyses.representation import representation_consistency  # noqa: E402  (registers)

__all__ += ["representation_consistency"]
