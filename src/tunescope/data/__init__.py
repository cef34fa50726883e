"""Datasets as plain typed records, loaders for real formats, and small built-in sets."""

from tunescope.data.check import check_dataset
from tunescope.data.instructions import (
                                         builtin_instructions,
                                         load_annotations,
                                         load_instruction_jsonl,
                                         load_wu2024,
)
from tunescope.data.pairs import builtin_pairs, hf_pairs, load_pairs, pararel_pairs
from tunescope.data.pararel import load_pararel, pararel, pull_pararel
from tunescope.data.prompts import FACTUAL_PROMPTS
from tunescope.data.sft import SFTExample, builtin_sft, load_sft
from tunescope.data.tasks import builtin_task, hf_task, load_task
from tunescope.data.types import (
                                         Fact,
                                         InstructionPrompt,
                                         ParaphrasePair,
                                         Relation,
                                         Task,
                                         TaskExample,
                                         Template,
)
from tunescope.data.verbs import INSTRUCTION_VERBS, general_verbs
from tunescope.data.vocabulary import Vocabulary, frequent_words, load_word_frequencies

__all__ = ["FACTUAL_PROMPTS", "INSTRUCTION_VERBS", "Fact", "InstructionPrompt",
           "ParaphrasePair", "Relation", "SFTExample", "Task", "TaskExample", "Template",
           "Vocabulary", "builtin_instructions", "builtin_pairs", "builtin_sft", "builtin_task",
           "check_dataset", "frequent_words", "general_verbs", "hf_pairs", "hf_task",
           "load_annotations", "load_instruction_jsonl", "load_pairs", "load_pararel",
           "load_sft", "load_task", "load_word_frequencies", "load_wu2024", "pararel",
           "pararel_pairs", "pull_pararel"]
