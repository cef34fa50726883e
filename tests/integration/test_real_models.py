"""The two real bundled models: loading, predictions, scoring, hooks, batching."""

import json
import time

import pytest
import torch

from tunescope import load
from tunescope.engine import generate_greedy, next_token_logprobs, score_continuations
from tunescope.engine.forward import top_predictions
from tunescope.models import bundled
from tunescope.models.hooks import trace

pytestmark = pytest.mark.integration

PROMPTS = ["The capital of France is", "The official language of Spain is",
           "The Eiffel Tower is located in the city of", "Romeo and Juliet was written by"]


def test_metadata(gemma, smollm):
    assert gemma.family == "gemma3_text" and gemma.source == "bundled"
    assert gemma.anatomy.n_layers == 18 and gemma.anatomy.n_kv_heads == 1
    assert not gemma.has_chat_template and gemma.extra["role"] == "base"
    assert smollm.family == "llama" and smollm.anatomy.n_layers == 30
    assert smollm.anatomy.n_heads == 9 and smollm.anatomy.n_kv_heads == 3
    assert smollm.has_chat_template and smollm.extra["role"] == "instruct"
    assert gemma.dtype == smollm.dtype == torch.float32


def test_smollm_knows_the_capital_of_france(smollm, gemma):
    assert top_predictions(smollm, ["The capital of France is"], k=1)[0][0][0] == " Paris"
    gemma_top = [t for t, _ in top_predictions(gemma, ["The capital of France is"], k=3)[0]]
    assert " Paris" in gemma_top
    assert top_predictions(gemma, ["The official language of Spain is"], k=1)[0][0][0] == " Spanish"


@pytest.mark.parametrize("which", ["gemma", "smollm"])
def test_summed_logprob_equals_single_full_forward(which, request):
    lm = request.getfixturevalue(which)
    cands = [["Paris", "Lyon", "the city of lights"], ["Spanish", "Catalan"],
             ["Paris", "Rome"], ["William Shakespeare", "Charles Dickens"]]
    scores = score_continuations(lm, PROMPTS, cands)
    for prompt, cs, s in zip(PROMPTS, cands, scores):
        p_ids = lm.tokenizer(prompt)["input_ids"]
        for c, got in zip(cs, s.sum_logprob):
            ids = lm.tokenizer(prompt + " " + c)["input_ids"]
            with torch.no_grad():
                lp = torch.log_softmax(lm.model(torch.tensor([ids])).logits[0], -1)
            expected = sum(float(lp[t - 1, ids[t]]) for t in range(len(p_ids), len(ids)))
            assert got == pytest.approx(expected, abs=1e-4)
    assert scores[0].sum_logprob[0] > scores[0].sum_logprob[1]  # Paris beats Lyon


@pytest.mark.parametrize("which", ["gemma", "smollm"])
def test_batched_equals_unbatched_and_hooks_change_nothing(which, request):
    lm = request.getfixturevalue(which)
    batched = next_token_logprobs(lm, PROMPTS, batch_size=4)
    single = torch.cat([next_token_logprobs(lm, [p], batch_size=1) for p in PROMPTS])
    # Multithreaded BLAS sums in a different order for different batch shapes (even for
    # identical rows), so real-size logits differ in the last float32 bits: about 1e-6
    # relative. Probabilities agree to 1e-5 absolute; log-probabilities to float32 precision.
    torch.testing.assert_close(batched.exp(), single.exp(), atol=1e-5, rtol=0)
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=2e-6)
    assert torch.equal(batched.argmax(-1), single.argmax(-1))
    ids = torch.tensor([lm.tokenizer(PROMPTS[0])["input_ids"]])
    with torch.no_grad():
        plain = lm.model(ids).logits
        with trace(lm, points=("embed", "resid_post", "attn_out", "mlp_out")):
            hooked = lm.model(ids).logits
    assert torch.equal(plain, hooked)


def test_generation_batched_equals_single(smollm):
    prompts = [smollm.format_prompt(p, chat=True) for p in ["What is 2+2?", "Name a color."]]
    batched = generate_greedy(smollm, prompts, max_new_tokens=12)
    single = [generate_greedy(smollm, [p], max_new_tokens=12, batch_size=1)[0] for p in prompts]
    assert [g.token_ids for g in batched] == [g.token_ids for g in single]
    assert "4" in batched[0].text


def test_prepared_cache_matches_fresh_transformers_load(smollm):
    """The cached safetensors are the dequantised GGUF: a fresh GGUF load gives equal logits."""
    gguf = bundled.gguf_parts("smollm2-135m-instruct")[0]
    direct = load(gguf)
    assert direct.source == "gguf"
    ids = torch.tensor([smollm.tokenizer("The capital of France is")["input_ids"]])
    assert ids.tolist() == [direct.tokenizer("The capital of France is")["input_ids"]]
    with torch.no_grad():
        assert torch.equal(direct.model(ids).logits, smollm.model(ids).logits)


def test_second_load_is_fast_and_marker_is_complete(gemma):
    directory = bundled.model_dir("gemma-3-270m")
    meta = json.loads((directory / bundled.MARKER).read_text())
    assert meta["gguf_sha256"] == bundled.get("gemma-3-270m").sha256
    start = time.perf_counter()
    again = load("gemma-3-270m")
    assert time.perf_counter() - start < 60  # seconds, not the minute of dequantisation
    assert again.anatomy.n_layers == 18


@pytest.mark.parametrize("which", ["gemma", "smollm"])
def test_word_token_ids_equal_the_tokenizer_call(which, request):
    """The backend's offset-free batch encoding gives the tokenizer's own ids on real words."""
    import tunescope
    from tunescope.analyses.helpers.word_vectors import word_token_ids

    lm = request.getfixturevalue(which)
    words = list(tunescope.data.frequent_words(3000).words) + ["naïve", "日本", "e-mail", "U.S."]
    called = lm.tokenizer([" " + w for w in words], add_special_tokens=False)["input_ids"]
    # the tokenizer call's ids, less a leading whitespace-only token before other tokens
    expected = [ids[1:] if len(ids) > 1 and not lm.tokenizer.decode(ids[:1]).strip() else ids
                for ids in called]
    assert word_token_ids(lm, words) == expected
    assert sum(a != b for a, b in zip(expected, called)) < 20       # a few words only


@pytest.mark.parametrize("which", ["gemma", "smollm"])
def test_prepared_directory_lists_the_added_tokens(which, request):
    """The prepared tokenizer_config.json names every added token, as the tokenizer has them
    (so transformers does not parse tokenizer.json a second time on each load)."""
    lm = request.getfixturevalue(which)
    directory = bundled.model_dir(lm.name)
    assert bundled.prepared_metadata(directory)["format"] == bundled.FORMAT
    config = json.loads((directory / "tokenizer_config.json").read_text())
    listed = {int(i): t["content"] for i, t in config["added_tokens_decoder"].items()}
    assert listed == {i: t.content for i, t in lm.tokenizer.added_tokens_decoder.items()}
    assert len(listed) > 10


def test_directory_of_an_earlier_format_is_upgraded_in_place(tmp_path, monkeypatch, smollm):
    """A cache prepared before format 2 (no added tokens in tokenizer_config.json, no format
    in the marker) is upgraded by the next load, without preparing again, and tokenises the
    same."""
    name = "smollm2-135m-instruct"
    source = bundled.model_dir(name)
    old = tmp_path / "models" / name
    old.mkdir(parents=True)
    for f in source.iterdir():
        if f.name == "model.safetensors":
            (old / f.name).symlink_to(f)
        else:
            (old / f.name).write_bytes(f.read_bytes())
    config = json.loads((old / "tokenizer_config.json").read_text())
    del config["added_tokens_decoder"]
    (old / "tokenizer_config.json").write_text(json.dumps(config))
    meta = json.loads((old / bundled.MARKER).read_text())
    del meta["format"]
    (old / bundled.MARKER).write_text(json.dumps(meta))
    monkeypatch.setenv("TUNESCOPE_CACHE", str(tmp_path))

    upgraded = load(name)
    assert bundled.prepared_metadata(old)["format"] == bundled.FORMAT
    assert "added_tokens_decoder" in json.loads((old / "tokenizer_config.json").read_text())
    assert (old / "model.safetensors").is_symlink()                  # not prepared again
    texts = PROMPTS + ["<|im_start|>user\nHi<|im_end|>", "naïve café 日本語"]
    assert [upgraded.tokenizer(t)["input_ids"] for t in texts] == [
        smollm.tokenizer(t)["input_ids"] for t in texts]
    assert upgraded.tokenizer.all_special_tokens == smollm.tokenizer.all_special_tokens
