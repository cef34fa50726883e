"""A tuned bundled model (gemma-3-270m-sft) is its base plus the adapter shipped in the package:
preparing it merges the adapter into the prepared base and gives the weights the tuning run
saved; the model loads by name with the chat template it was tuned with."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from study.test_study_run import save_lm
from tiny import tiny_lm

import tunescope
from tunescope.models import bundled
from tunescope.tuning import TuneConfig, tune
from tunescope.tuning.run import export_adapter
from tunescope.tuning.template import DEFAULT_TEMPLATE
from tuning.test_tune import FAST, toy


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A tiny base 'tiny-base' (already prepared) and a tuned bundled model 'tiny-sft' whose
    adapter was exported from a real tuning run."""
    base_dir = Path(save_lm(tiny_lm("llama"), tmp_path / "base"))
    (base_dir / bundled.MARKER).write_text(json.dumps({"name": "tiny-base", "version": "1"}))
    tuned = tune(base_dir, toy(), tmp_path / "tuned", TuneConfig(epochs=2, **FAST),
                 progress=False)
    adapter = export_adapter(tuned.path, tmp_path / "adapters" / "tiny-sft")
    model = bundled.TunedBundledModel(name="tiny-sft", base="tiny-base", role="instruct",
                                      description="tiny test model")
    monkeypatch.setenv("TUNESCOPE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(bundled.BUNDLED, "tiny-sft", model)
    monkeypatch.setattr(bundled.TunedBundledModel, "adapter_dir", property(lambda self: adapter))
    real_pull = bundled.pull
    monkeypatch.setattr(bundled, "pull", lambda name, **kw: base_dir if name == "tiny-base"
                        else real_pull(name, **kw))
    return {"base": base_dir, "tuned": tuned.path, "adapter": adapter}


def test_exported_adapter_names_its_base_and_carries_recipe_and_template(shipped):
    adapter = shipped["adapter"]
    assert sorted(p.name for p in adapter.iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "chat_template.jinja",
        "tunescope-tune.json"]
    assert json.loads((adapter / "adapter_config.json").read_text())[
        "base_model_name_or_path"] == str(shipped["base"])          # the recipe's base spec
    assert (adapter / "chat_template.jinja").read_text() == DEFAULT_TEMPLATE


def test_preparing_merges_the_shipped_adapter_into_the_base(shipped):
    path = bundled.pull("tiny-sft")
    made, prepared = load_file(str(shipped["tuned"] / "model.safetensors")), \
        load_file(str(path / "model.safetensors"))
    assert made.keys() == prepared.keys()
    assert all(torch.equal(made[k], prepared[k]) for k in made)     # same fp32 merge
    meta = bundled.prepared_metadata(path)
    assert meta["base"] == "tiny-base" and meta["base_version"] == "1" and meta["version"] == bundled.adapter_sha256(
        bundled.get("tiny-sft"))[:12]
    lm = tunescope.load("tiny-sft")
    assert lm.source == "bundled" and lm.tokenizer.chat_template == DEFAULT_TEMPLATE
    assert lm.revision == meta["version"]
    assert (path / "tunescope-tune.json").is_file()
    assert bundled.status("tiny-sft")["status"] == "ready"


def test_prepared_once_and_again_when_the_adapter_changes(shipped):
    path = bundled.pull("tiny-sft")
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert bundled.pull("tiny-sft") == path
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp       # not merged again
    weights = load_file(str(shipped["adapter"] / "adapter_model.safetensors"))
    from safetensors.torch import save_file
    save_file({k: v * 2 for k, v in weights.items()},
              str(shipped["adapter"] / "adapter_model.safetensors"))
    bundled.pull("tiny-sft")
    assert (path / "model.safetensors").stat().st_mtime_ns != stamp
    shutil.rmtree(path)
    assert not bundled.is_ready("tiny-sft")
    assert bundled.pull("tiny-sft") == path and bundled.is_ready("tiny-sft")
