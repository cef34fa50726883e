"""Models: loading (bundled, hub, local, GGUF), the LM type, anatomy and hooks."""

from tunescope.models.anatomy import FAMILIES, Anatomy, HeadWeights
from tunescope.models.bundled import BUNDLED
from tunescope.models.hooks import block_attention, trace
from tunescope.models.lm import LM
from tunescope.models.loading import load

__all__ = ["BUNDLED", "FAMILIES", "LM", "Anatomy", "HeadWeights", "block_attention", "load",
           "trace"]
