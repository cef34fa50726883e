"""`tunescope tune` on the real Gemma 3 270M base (a few steps), and the shipped matched
variant gemma-3-270m-sft."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import tunescope
from tunescope.data.sft import builtin_sft
from tunescope.engine.generation import generate_greedy
from tunescope.models import bundled
from tunescope.tuning import TuneConfig, tune

pytestmark = pytest.mark.integration


def test_a_few_steps_on_the_real_base(tmp_path):
    result = tune("gemma-3-270m", "builtin", tmp_path / "out",
                  TuneConfig(steps=3, batch_size=2, learning_rate=1e-3, checkpoint_every=2),
                  max_examples=12, progress=False)
    recipe = result.recipe
    assert recipe["steps"] == 3 and len(recipe["losses"]) == 3
    assert all(0 < loss < 10 for loss in recipe["losses"])
    assert recipe["base"]["family"] == "gemma3_text" and recipe["data"]["n_examples"] == 12
    assert recipe["template"].startswith("tunescope default")
    lm = tunescope.load(result.path)
    assert lm.family == "gemma3_text" and lm.anatomy.n_layers == 18 and lm.has_chat_template
    adapter = load_file(str(result.path / "adapter" / "adapter_model.safetensors"))
    assert len(adapter) == 18 * 7 * 2              # A and B of 7 linear layers in 18 blocks
    base = load_file(str(bundled.model_dir("gemma-3-270m") / "model.safetensors"))
    tuned = load_file(str(result.path / "model.safetensors"))
    changed = [k for k in base if not torch.equal(base[k], tuned[k])]
    assert changed and all(".layers." in k for k in changed)    # embeddings and norms untouched


def test_the_shipped_matched_variant_answers():
    lm = tunescope.load("gemma-3-270m-sft")
    base = tunescope.load("gemma-3-270m")
    assert lm.family == base.family and lm.anatomy.n_layers == base.anatomy.n_layers
    assert lm.has_chat_template and not base.has_chat_template
    recipe = json.loads((bundled.model_dir("gemma-3-270m-sft") / "tunescope-tune.json")
                        .read_text())
    assert recipe["base"]["spec"] == "gemma-3-270m" and recipe["data"]["source"] == "builtin"
    examples = [e for e in builtin_sft("heldout") if e.category in ("arithmetic", "lists")][:6]
    outputs = generate_greedy(lm, [lm.format_prompt(e.messages[-2]["content"], chat=True)
                                   for e in examples], max_new_tokens=48)
    assert sum(bool(o.text.strip()) and len(o.token_ids) < 48 for o in outputs) >= 5, \
        [o.text for o in outputs]
