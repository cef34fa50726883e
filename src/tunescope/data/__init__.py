"""Datasets as plain typed records, loaders for real formats, and small built-in sets."""

from tunescope.data.instructions import (builtin_instructions, load_annotations,
                                          load_instruction_jsonl, load_wu2024)
from tunescope.data.pairs import builtin_pairs, hf_pairs, load_pairs, pararel_pairs
from tunescope.data.pararel import load_pararel, pararel, pull_pararel
from tunescope.data.sft import SFTExample, builtin_sft, load_sft
from tunescope.data.tasks import builtin_task, hf_task, load_task
from tunescope.data.verbs import INSTRUCTION_VERBS, general_verbs
from tunescope.data.vocabulary import Vocabulary, frequent_words, load_word_frequencies
from tunescope.data.types import (Fact, InstructionPrompt, ParaphrasePair, Relation, Task,
                                  TaskExample, Template)

__all__ = ["INSTRUCTION_VERBS", "Vocabulary", "frequent_words", "general_verbs",
           "load_word_frequencies", "Fact", "InstructionPrompt", "ParaphrasePair", "Relation", "Task", "TaskExample", "Template",
           "builtin_instructions", "builtin_pairs", "load_annotations", "load_instruction_jsonl",
           "load_wu2024", "builtin_task", "hf_pairs", "hf_task", "load_pairs", "load_pararel",
           "load_task", "pararel", "pararel_pairs", "pull_pararel", "SFTExample", "builtin_sft",
           "load_sft"]
