"""Built-in prompt sets."""

from __future__ import annotations

FACTUAL_PROMPTS = (
    "The capital of France is",
    "The official language of Spain is",
    "The Eiffel Tower is located in the city of",
    "The chemical symbol for gold is",
    "Romeo and Juliet was written by",
)
"""A few factual prompts that show at a glance whether a model knows simple facts."""
