"""Instruction tuning of a causal LM, so that base-vs-tuned comparisons can use a variant made
with a known recipe from the same base (``tunescope tune``; :func:`tune`).

- :mod:`~tunescope.tuning.config`: :class:`TuneConfig`, the method and hyperparameters;
- :mod:`~tunescope.tuning.sources`: the data (``builtin``, a file, ``distill:MODEL``);
- :mod:`~tunescope.tuning.template`: chat template and response-only labels;
- :mod:`~tunescope.tuning.loop`: the training loop and its checkpoints;
- :mod:`~tunescope.tuning.run`: :func:`tune`, which ties them together and saves the model.
"""

from tunescope.tuning.config import TuneConfig
from tunescope.tuning.run import TunedModel, read_recipe, tune
from tunescope.tuning.sources import slug

__all__ = ["TuneConfig", "TunedModel", "read_recipe", "slug", "tune"]
