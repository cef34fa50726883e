"""`tunescope tune` on tiny models: the loss falls on a learnable toy set, the loss covers the
response tokens only, the response-only loss equals the loss computed from the model's full
logits, a merged LoRA model equals the adapter's forward, the same seed gives the same weights,
a killed run resumes to the same weights, the output directory's states, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from study.test_study_run import save_lm
from tiny import tiny_lm

import tunescope
from tunescope.data.sft import SFTExample
from tunescope.errors import DataError, TunescopeError
from tunescope.models import loading
from tunescope.tuning import TuneConfig, read_recipe, tune
from tunescope.tuning.loop import collate, learning_rate, response_loss, schedule
from tunescope.tuning.sources import TuningData
from tunescope.tuning.template import DEFAULT_TEMPLATE, IGNORE, encode_example

WORDS = ["cat", "dog", "sun", "sea", "red", "blue", "tree", "rain"]
FAST = dict(batch_size=4, learning_rate=3e-3, warmup_steps=2, precision="float32")


def toy_examples(n_repeat: int = 2) -> list[SFTExample]:
    """Say W. -> W W. : learnable by a tiny model in a few dozen steps."""
    return [SFTExample(id=f"say-{i}-{w}", messages=(
        {"role": "user", "content": f"Say {w} twice."},
        {"role": "assistant", "content": f"{w} {w}."}))
        for i in range(n_repeat) for w in WORDS]


def toy(n_repeat: int = 2) -> TuningData:
    return TuningData("toy", "toy", toy_examples(n_repeat))


def write_toy(path: Path) -> Path:
    path.write_text("".join(json.dumps({"instruction": f"Say {w} twice.", "response": f"{w} {w}."})
                            + "\n" for _ in range(2) for w in WORDS))
    return path


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    return save_lm(tiny_lm("llama"), tmp_path_factory.mktemp("tune") / "base")


def weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(Path(directory) / "model.safetensors"))


# --- tokens and labels -------------------------------------------------------------------------
@pytest.mark.parametrize("chat", [False, True])
def test_labels_cover_the_response_tokens_only(chat):
    lm = tiny_lm("llama", chat=chat)
    example = SFTExample(id="x", messages=(
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."}))
    template = lm.tokenizer.chat_template if chat else DEFAULT_TEMPLATE
    enc = encode_example(lm, example, template)
    messages = [dict(m) for m in example.messages]
    prompt = lm.tokenizer.apply_chat_template(messages[:-1], chat_template=template,
                                              tokenize=False, add_generation_prompt=True)
    full = lm.tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False)
    assert full.startswith(prompt) and "Blue." in full[len(prompt):]
    # token by token: every prompt position is IGNORE, every response position is its token
    assert len(enc.labels) == len(enc.input_ids)
    for position, (token, label) in enumerate(zip(enc.input_ids, enc.labels)):
        if position < enc.n_prompt:
            assert label == IGNORE, position
        else:
            assert label == token, position
    response = lm.tokenizer.decode(enc.input_ids[enc.n_prompt:])
    assert response == full[len(prompt):]
    assert "Name a colour." in lm.tokenizer.decode(enc.input_ids[:enc.n_prompt])
    assert "Blue" not in lm.tokenizer.decode(enc.input_ids[:enc.n_prompt])
    if not chat:
        assert response == "Blue." + lm.tokenizer.eos_token + "\n\n"
    assert enc.input_ids.count(lm.tokenizer.bos_token_id) == 1      # one BOS, as at inference


def test_an_example_longer_than_max_length_is_named():
    lm = tiny_lm("llama")
    long = SFTExample(id="long-one", messages=({"role": "user", "content": "word " * 40},
                                               {"role": "assistant", "content": "ok"}))
    with pytest.raises(DataError, match=r"example long-one: \d+ tokens, more than the limit "
                                        r"of 64 tokens"):
        encode_example(lm, long, DEFAULT_TEMPLATE, max_length=64)
    longer = SFTExample(id="longer", messages=({"role": "user", "content": "word " * 600},
                                               {"role": "assistant", "content": "ok"}))
    with pytest.raises(DataError, match=r"^example longer: 2,\d\d\d tokens long, more than "
                                        r"model 'tiny-llama' takes \(1,024 tokens\)"):
        encode_example(lm, longer, DEFAULT_TEMPLATE)


@pytest.mark.parametrize("family", ["llama", "gemma2", "gemma3", "gpt2"])
def test_response_loss_equals_the_loss_from_the_full_logits(family):
    """The output projection only at response positions (soft-capped where the model is)
    gives the loss that the model's own full logits give."""
    lm = tiny_lm(family)
    encoded = [encode_example(lm, e, DEFAULT_TEMPLATE) for e in toy_examples(1)[:5]]
    batch = collate(encoded, lm.tokenizer.pad_token_id)
    loss, n = response_loss(lm.model, batch, lm.anatomy.logit_softcap)
    logits = lm.model(input_ids=batch["input_ids"],
                      attention_mask=batch["attention_mask"]).logits
    reference = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                                batch["labels"][:, 1:].reshape(-1), ignore_index=IGNORE)
    assert n == sum(e.n_response for e in encoded)
    assert torch.allclose(loss, reference, rtol=1e-5, atol=1e-6), (float(loss), float(reference))


# --- schedule --------------------------------------------------------------------------------
def test_schedule_covers_each_example_once_per_epoch_and_is_seeded():
    config = TuneConfig(epochs=3, batch_size=4, seed=7)
    plan = schedule(10, config)
    assert [len(b) for b in plan] == [4, 4, 2] * 3
    for epoch in range(3):
        assert sorted(sum(plan[3 * epoch:3 * epoch + 3], [])) == list(range(10))
    assert plan == schedule(10, config)
    assert plan != schedule(10, TuneConfig(epochs=3, batch_size=4, seed=8))
    assert len(schedule(10, TuneConfig(steps=7, batch_size=4))) == 7


def test_learning_rate_warms_up_then_decays_to_zero():
    config = TuneConfig(learning_rate=1.0, warmup_steps=2)
    assert [learning_rate(s, 6, config) for s in range(6)] == [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]


@pytest.mark.parametrize("bad, message", [
    (dict(method="qlora"), "method must be one of lora, full"),
    (dict(rank=0), "rank must be a positive integer"),
    (dict(precision="fp8"), "precision must be auto, bfloat16 or float32"),
    (dict(learning_rate=-1.0), "learning_rate must be positive"),
    (dict(steps=0), "steps must be a positive integer"),
])
def test_bad_settings_are_one_line(bad, message):
    with pytest.raises(TunescopeError, match=message):
        TuneConfig(**bad)


# --- the loop ---------------------------------------------------------------------------------
def test_loss_falls_and_the_tuned_model_answers(base_dir, tmp_path):
    result = tune(base_dir, toy(4), tmp_path / "out",
                  TuneConfig(epochs=15, **{**FAST, "learning_rate": 1e-2}), progress=False)
    losses = result.recipe["losses"]
    assert len(losses) == 15 * 8 and result.recipe["steps"] == 120
    assert sum(losses[-5:]) / 5 < 0.25 * sum(losses[:5]) / 5, (losses[:5], losses[-5:])
    lm = tunescope.load(tmp_path / "out")
    assert lm.has_chat_template                    # the default template was saved with it
    from tunescope.engine.generation import generate_greedy
    answers = generate_greedy(lm, [lm.format_prompt(f"Say {w} twice.", chat=True)
                                   for w in WORDS], max_new_tokens=12)
    assert sum(a.text.strip() == f"{w} {w}." for a, w in zip(answers, WORDS)) >= 6, \
        [a.text for a in answers]


def test_merged_model_equals_the_adapter_forward(base_dir, tmp_path):
    """Logits of the saved merged model equal base + adapter (peft, unmerged) to float32
    precision."""
    from peft import PeftModel

    tune(base_dir, toy(), tmp_path / "out", TuneConfig(epochs=2, **FAST), progress=False)
    merged = tunescope.load(tmp_path / "out")
    base = tunescope.load(base_dir)
    adapted = PeftModel.from_pretrained(base.model, str(tmp_path / "out" / "adapter"))
    ids = merged.tokenizer(["Say cat twice.", "Say sea twice, please."], padding=True,
                           return_tensors="pt")
    with torch.no_grad():
        a = merged.model(**ids).logits
        b = adapted(**ids).logits
        plain = tunescope.load(base_dir).model(**ids).logits
    # float32 rounding of W + (alpha / r) B A against W x + (alpha / r) B (A x): ~1e-6 relative
    assert (a - b).abs().max() <= 1e-5 * a.abs().max(), ((a - b).abs().max(), a.abs().max())
    assert (a - plain).abs().max() > 1e-2                       # the adapter changed something


def test_same_seed_same_weights_other_seed_other_weights(base_dir, tmp_path):
    config = TuneConfig(epochs=2, **FAST)
    for name in ("a", "b"):
        tune(base_dir, toy(), tmp_path / name, config, progress=False)
    tune(base_dir, toy(), tmp_path / "c", TuneConfig(epochs=2, seed=1, **FAST), progress=False)
    a, b, c = (weights(tmp_path / n) for n in "abc")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_full_tuning_changes_every_layer_and_saves_no_adapter(base_dir, tmp_path):
    tune(base_dir, toy(), tmp_path / "out", TuneConfig(method="full", epochs=1, **FAST),
         progress=False)
    assert not (tmp_path / "out" / "adapter").exists()
    before, after = weights(base_dir), weights(tmp_path / "out")
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert any("embed" in k for k in changed) and any("layers.1." in k for k in changed)


def test_killed_run_resumes_to_the_same_weights(base_dir, tmp_path):
    data = write_toy(tmp_path / "toy.jsonl")
    driver = [sys.executable, str(Path(__file__).parents[1] / "tune_driver.py"),
              str(base_dir), str(data)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(driver + [str(tmp_path / "whole")], env=env, check=True, timeout=300)
    killed = subprocess.run(driver + [str(tmp_path / "resumed"), "kill"], env=env, timeout=300)
    assert killed.returncode == -9
    assert not (tmp_path / "resumed" / "config.json").exists()        # nothing looks finished
    state = json.loads((tmp_path / "resumed" / ".tunescope-tune" / "checkpoint" /
                        "state.json").read_text())
    assert state["step"] == 2
    subprocess.run(driver + [str(tmp_path / "resumed")], env=env, check=True, timeout=300)
    whole, resumed = weights(tmp_path / "whole"), weights(tmp_path / "resumed")
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert read_recipe(tmp_path / "resumed")["losses"] == read_recipe(tmp_path / "whole")["losses"]


def test_output_directory_states(base_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    config = TuneConfig(epochs=1, **FAST)
    first = tune(base_dir, toy(), out, config, progress=False)
    saved = weights(out)
    again = tune(base_dir, toy(), out, config, progress=False)         # finished: returned
    assert again.recipe["made"] == first.recipe["made"]
    with pytest.raises(TunescopeError, match="holds a tuning run of another recipe"):
        tune(base_dir, toy(), out, TuneConfig(epochs=2, **FAST), progress=False)
    assert all(torch.equal(saved[k], v) for k, v in weights(out).items())
    tune(base_dir, toy(), out, TuneConfig(epochs=2, **FAST), progress=False, force=True)
    assert read_recipe(out)["steps"] == 8 and (out / "notes.txt").read_text() == "mine"
    assert not (out / ".tunescope-tune").exists()
    recipe = read_recipe(out)
    assert recipe["base"]["spec"] == str(base_dir) and recipe["data"]["n_examples"] == 16
    assert recipe["config"]["learning_rate"] == 3e-3 and recipe["config"]["method"] == "lora"
    assert recipe["template"].startswith("tunescope default")
    assert set(recipe["versions"]) == {"tunescope", "torch", "transformers", "peft"}
    made = tunescope.load(out).metadata["tuned_by"]           # what Results' provenance keeps
    assert made == {"base": str(base_dir), "data": "toy", "data_fingerprint":
                    recipe["data"]["fingerprint"], "n_examples": 16, "method": "lora",
                    "seed": 0, "steps": 8, "final_loss": recipe["final_loss"]}


def test_cli_tune_makes_variants_and_errors_are_one_line(base_dir, tmp_path):
    from typer.testing import CliRunner

    from tunescope.cli import app
    data = write_toy(tmp_path / "toy.jsonl")
    result = CliRunner().invoke(app, ["tune", str(base_dir), "--data", str(data), "--seed", "0",
                                      "--seed", "1", "--epochs", "1", "--batch-size", "4",
                                      "--precision", "float32", "--out", str(tmp_path / "v")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "v").iterdir()) == ["seed0", "seed1"]
    assert "--tuned" in result.output
    for args, message in [
        (["tune", str(base_dir), "--data", str(tmp_path / "missing.jsonl")], "no such file"),
        (["tune", str(base_dir), "--method", "qlora"], "method must be one of"),
        (["tune", "no-such-model"], "unknown model 'no-such-model'"),
    ]:
        run = subprocess.run([sys.executable, "-m", "tunescope", *args, "--out",
                              str(tmp_path / "bad")], capture_output=True, text=True,
                             timeout=300)
        assert run.returncode == 2, run.stderr
        assert run.stderr.strip().count("\n") == 0 and message in run.stderr, run.stderr


def test_distill_answers_the_builtin_instructions_with_the_teacher_once(base_dir, tmp_path,
                                                                       monkeypatch):
    from tunescope.data.sft import builtin_sft
    from tunescope.engine.generation import generate_greedy
    from tunescope.tuning.sources import resolve

    teacher = tunescope.load(base_dir)
    prompts = builtin_sft("train")[:5]
    expected = [g.text.strip() for g in generate_greedy(
        teacher, [e.messages[-2]["content"] for e in prompts], max_new_tokens=6)]
    loads = []
    real_load = tunescope.load
    monkeypatch.setattr(loading, "load", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    data = resolve(f"distill:{base_dir}", work=tmp_path, max_examples=5, distill_tokens=6)
    kept = [(e, a) for e, a in zip(prompts, expected) if a]
    assert [e.response for e in data.examples] == [a for _, a in kept]
    assert [e.messages[:-1] for e in data.examples] == [e.messages[:-1] for e, _ in kept]
    assert data.details["teacher"] == str(base_dir) and data.details["prompts"] == 5
    assert data.details["empty_answers_left_out"] == 5 - len(kept)
    assert data.name.startswith("distill-") and len(loads) == 1
    again = resolve(f"distill:{base_dir}", work=tmp_path, max_examples=5, distill_tokens=6)
    assert again.fingerprint == data.fingerprint and len(loads) == 1     # answers kept


def test_a_file_with_heldout_rows_tunes_on_the_others(tmp_path):
    from tunescope.tuning.sources import resolve
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps({"instruction": f"Say {w}.", "response": w,
                                        "split": "heldout" if i % 4 == 0 else "train"}) + "\n"
                            for i, w in enumerate(WORDS)))
    data = resolve(str(path))
    assert [e.response for e in data.examples] == [w for i, w in enumerate(WORDS) if i % 4]
    assert data.details == {"heldout_left_out": 2}


def test_cli_recipe_re_creates_the_same_weights(base_dir, tmp_path):
    from typer.testing import CliRunner

    from tunescope.cli import app
    data = write_toy(tmp_path / "toy.jsonl")
    first = tune(base_dir, str(data), tmp_path / "first", TuneConfig(epochs=1, **FAST),
                 progress=False)
    result = CliRunner().invoke(app, ["tune", "--recipe", str(first.path / "tunescope-tune.json"),
                                      "--out", str(tmp_path / "again")])
    assert result.exit_code == 0, result.output
    again = read_recipe(tmp_path / "again")
    assert again["config"] == first.recipe["config"] and again["losses"] == first.recipe["losses"]
    a, b = weights(first.path), weights(tmp_path / "again")
    assert all(torch.equal(a[k], b[k]) for k in a)
