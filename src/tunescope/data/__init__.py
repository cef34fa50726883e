"""Datasets as plain typed records, loaders for real formats, and small built-in sets."""

from tunescope.data.types import Fact, ParaphrasePair, Relation, Task, TaskExample, Template

__all__ = ["Fact", "ParaphrasePair", "Relation", "Task", "TaskExample", "Template"]
