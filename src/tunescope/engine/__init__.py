"""The engine: batching, candidate scoring, traced forward passes and generation.

Speed lives here; analyses call these functions rather than looping over the model themselves.
"""

from tunescope.engine.batching import BatchSizer, left_pad, length_buckets
from tunescope.engine.forward import next_token_logprobs, top_predictions
from tunescope.engine.generation import Generation, generate_greedy
from tunescope.engine.scoring import ContinuationScores, score_continuations

__all__ = ["BatchSizer", "ContinuationScores", "Generation", "generate_greedy", "left_pad",
           "length_buckets", "next_token_logprobs", "score_continuations", "top_predictions"]
