"""The default study (``tunescope run`` with no arguments): the bundled models, every analysis,
at sizes that finish in a few minutes on 2 CPU cores.

The sizes are the YAML below, with the reason for each; everything not named keeps the
studies' defaults (docs/methods.md).
"""

from __future__ import annotations

from tunescope.study.yaml_source import Source, parse_yaml

DEFAULT_STUDY_YAML = """\
# tunescope's default study: Gemma 3 270M (base) against two tuned models:
# - gemma-3-270m-sft: the same base tuned by `tunescope tune` on the built-in instruction set
#   (recipe shipped with its adapter): a matched pair, so every difference is what tuning
#   changed, and the weight-level comparisons (heads paired by index, FFN subspaces) run;
# - smollm2-135m-instruct: another family's instruct model, compared metric by metric (and by
#   relative depth), never weight to weight.
# Every analysis runs, at sizes chosen so that the whole study takes a few minutes on 2 free
# CPU cores (benchmarks/study_overhead.py prints it); raise them for real conclusions
# (`--set datasets.pararel.max_facts=40`, ...).
base: gemma-3-270m
tuned: [gemma-3-270m-sft, smollm2-135m-instruct]
analyses:
  next_token_predictions: {}          # 5 factual prompts: a glance at what each model knows
  prediction_consistency: {}          # C1 over the ParaRel sample below
  representation_consistency: {}      # C2, every layer, mean and last-token pooling
  downstream_consistency: {}          # C3: probe, zero-shot raw and calibrated, kappa;
                                      #   up to 4 perturbations per example
  attention_knockout:                 # C4; each example costs 3 blocked sets x n_layers
    max_examples: 10                  #   counterfactual rows (Gemma 18 layers, SmolLM2 30)
  extraction_rate: {max_examples: 10}
  subject_enrichment: {max_examples: 10}
  attribution:                        # W1; the response budget (study: 300 tokens) sets the
    max_new_tokens: 24                #   cost: one batched backward pass per 16 tokens;
    chat: auto                        #   each model's chat template where it has one
  attention_heads: {}                 # W2; top 100 words per dimension (the study's K); one
                                      #   word similarity for both models: the offline
                                      #   sentence-embedding model (all-MiniLM-L6-v2)
  ffn_concepts:                       # W3; 50 components per layer described by 50 words;
    rank: 50                          #   the offline labeller gives the same label in every
    runs: 1                           #   run, so one run (the study: 5 LLM runs); the 50
    keep_vectors: 50                  #   components kept as vectors: principal angles
                                      #   between the matched pair's subspaces
datasets:
  pararel:                            # 4 relations x 8 facts (drawn with the seed) x their
    relations: [P17, P36, P37, P38]   #   [Y]-last templates: about 145 queries, each scored
    max_facts: 8                      #   against all of its relation's 22-43 objects; recall
                                      #   uses the ones answered right
  pairs: {max_pairs: 120}             # 20 paraphrases + 20 non-paraphrases from each source:
                                      #   written, factual, ParaRel-derived (seeded draw)
  task: {max_examples: 40}            # 20 per label; the probe trains on half; each example
                                      #   is scored up to 5 times (original + 4 perturbations)
  instructions: {max_prompts: 6}      # one prompt per category (writing, math, coding, ...)
  vocabulary: {size: 4000}            # the 4,000 most frequent English words (baseline: 3,000)
seed: 0
"""
"""The default study as YAML (with why each size was chosen)."""


def default_raw() -> tuple[dict, Source]:
    """The default study's plain values and their lines (for error messages)."""
    return parse_yaml(DEFAULT_STUDY_YAML, "<default study>")
