"""Analyses: one module per analysis, each ``(LM, dataset, config) -> Result``, registered by
name (see :mod:`tunescope.analyses.registry`). Importing this package registers them all."""

from tunescope.analyses.registry import REGISTRY, Analysis, get, register
from tunescope.analyses.predictions import next_token_predictions
from tunescope.analyses.prediction_consistency import prediction_consistency
from tunescope.analyses.representation import representation_consistency
from tunescope.analyses.downstream import downstream_consistency
from tunescope.analyses.recall import attention_knockout, extraction_rate, subject_enrichment
from tunescope.analyses.attribution import attribution
from tunescope.analyses.attention_heads import attention_heads
from tunescope.analyses.ffn_concepts import ffn_concepts

__all__ = ["REGISTRY", "Analysis", "attention_heads", "attention_knockout", "attribution",
           "downstream_consistency", "extraction_rate", "ffn_concepts", "get",
           "next_token_predictions", "prediction_consistency", "register",
           "representation_consistency", "subject_enrichment"]
