"""Engine: batched results equal one-at-a-time results and plain full forward passes."""

import pytest
import torch
from tiny import tiny_lm

from tunescope.engine import (
    BatchSizer,
    generate_greedy,
    left_pad,
    length_buckets,
    next_token_logprobs,
    score_continuations,
)
from tunescope.engine.scoring import split_continuations

PROMPTS = ["The capital of France is", "Paris is", "Write a short poem about the sea. Explain",
           "I", "Translate the following sentence into French:"]
CANDIDATES = [["Paris", "Rome", "the capital of Italy"], ["in France", "big"],
              ["why", "the sky is blue"], ["like apples", "x"], ["J'aime", "les pommes", "oui"]]


def test_left_pad_positions_count_real_tokens():
    b = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert b.input_ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert b.attention_mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert b.position_ids.tolist() == [[0, 1, 2], [0, 0, 0]]
    assert b.lengths.tolist() == [3, 1]
    with pytest.raises(ValueError, match="empty"):
        left_pad([[1], []], 0)


def test_length_buckets_respect_batch_and_token_budget():
    lengths = [3, 10, 4, 10, 1, 9]
    buckets = length_buckets(lengths, max_batch=2, token_budget=100)
    assert sorted(i for b in buckets for i in b) == list(range(6))
    assert all(len(b) <= 2 for b in buckets)
    assert buckets[0] == [1, 3]  # longest first
    tight = length_buckets(lengths, max_batch=8, token_budget=20)
    assert all(len(b) * max(lengths[i] for i in b) <= 20 or len(b) == 1 for b in tight)


def test_batch_sizer_halves_on_out_of_memory_and_keeps_going():
    seen = []

    def fn(chunk):
        if len(chunk) > 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        seen.append(list(chunk))
        return sum(chunk)

    sizer = BatchSizer(16)
    # 16 -> 8 -> 4 -> 2: the first size that fits; it is kept for the rest.
    assert sizer.run(list(range(10)), fn) == [0 + 1, 2 + 3, 4 + 5, 6 + 7, 8 + 9]
    assert sizer.batch_size == 2
    assert [x for c in seen for x in c] == list(range(10))


def test_batch_sizer_reraises_other_errors_and_oom_at_size_one():
    with pytest.raises(KeyError):
        BatchSizer(4).run([1, 2], lambda c: {}["x"])
    with pytest.raises(RuntimeError, match="out of memory"):
        BatchSizer(4).run([1, 2], lambda c: (_ for _ in ()).throw(RuntimeError("out of memory")))


def _reference_scores(lm, prompt, candidates, sep=" "):
    """Each (prompt, candidate) as its own full forward pass: the naive way."""
    prompt_ids = lm.tokenizer(prompt)["input_ids"]
    out = []
    for c in candidates:
        ids = lm.tokenizer(prompt + sep + c)["input_ids"]
        with torch.no_grad():
            lp = torch.log_softmax(lm.model(torch.tensor([ids])).logits[0].float(), -1)
        out.append(sum(float(lp[t - 1, ids[t]]) for t in range(len(prompt_ids), len(ids))))
    return out


def test_next_token_batched_equals_single(lm):
    batched = next_token_logprobs(lm, PROMPTS, batch_size=5)
    single = torch.cat([next_token_logprobs(lm, [p], batch_size=1) for p in PROMPTS])
    assert batched.shape == (5, lm.anatomy.vocab_size)
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=0)
    with torch.no_grad():
        plain = torch.log_softmax(lm.model(torch.tensor([lm.tokenizer(PROMPTS[2])["input_ids"]]))
                                  .logits[0, -1], -1)
    torch.testing.assert_close(batched[2], plain, atol=1e-5, rtol=0)


def test_score_continuations_equals_full_forward_and_single(lm):
    batched = score_continuations(lm, PROMPTS, CANDIDATES, batch_size=5)
    single = [score_continuations(lm, [p], [c], batch_size=1)[0] for p, c in zip(PROMPTS, CANDIDATES)]
    for p, c, b, s in zip(PROMPTS, CANDIDATES, batched, single):
        ref = _reference_scores(lm, p, c)
        assert b.sum_logprob == pytest.approx(ref, abs=1e-5)
        # float32 to its precision: on CPUs with AMX the batch shapes take different BLAS
        # kernels, and a sum of about -70 then differs by a unit or two in the last place
        # (5e-7: four units)
        assert b.sum_logprob == pytest.approx(s.sum_logprob, rel=5e-7, abs=1e-5)
        assert (b.mean_logprob * b.n_tokens) == pytest.approx(b.sum_logprob, abs=1e-9)
        assert (b.sum_logprob < 0).all()


def test_score_continuations_with_small_logit_budget(monkeypatch):
    """Candidate rows split into many chunks give the same scores."""
    import tunescope.engine.scoring as scoring
    lm = tiny_lm("gemma3")
    full = score_continuations(lm, PROMPTS, CANDIDATES)
    monkeypatch.setattr(scoring, "LOGIT_BUDGET", 320)
    chunked = score_continuations(lm, PROMPTS, CANDIDATES)
    for a, b in zip(full, chunked):
        assert a.sum_logprob == pytest.approx(b.sum_logprob, abs=1e-5)


def test_split_continuations_suffix_and_boundary_merge():
    lm = tiny_lm("llama")
    q = split_continuations(lm, "The capital of France is", ["Paris", "Rome"])
    prompt_ids = lm.tokenizer("The capital of France is")["input_ids"]
    assert q.prefix == prompt_ids
    assert q.prefix + q.continuations[0] == lm.tokenizer("The capital of France is Paris")["input_ids"]
    # "Fra" + "nce" merges across the boundary: the shared prefix shrinks, tokens stay exact.
    q = split_continuations(lm, "The capital of Fra", ["nce"], sep="")
    full = lm.tokenizer("The capital of France")["input_ids"]
    assert q.prefix + q.continuations[0] == full
    assert len(q.prefix) < len(lm.tokenizer("The capital of Fra")["input_ids"])
    scores = score_continuations(lm, ["The capital of Fra"], [["nce"]], sep="")
    with torch.no_grad():
        lp = torch.log_softmax(lm.model(torch.tensor([full])).logits[0], -1)
    expected = sum(float(lp[t - 1, full[t]]) for t in range(len(q.prefix), len(full)))
    assert scores[0].sum_logprob[0] == pytest.approx(expected, abs=1e-5)


def test_score_continuations_rejects_mismatched_input(lm):
    with pytest.raises(ValueError, match="one list of candidates per prompt"):
        score_continuations(lm, ["a", "b"], [["x"]])


def test_generation_batched_equals_single_and_manual_greedy(lm):
    batched = generate_greedy(lm, PROMPTS, max_new_tokens=6, batch_size=5, stop_at_eos=False)
    single = [generate_greedy(lm, [p], max_new_tokens=6, batch_size=1, stop_at_eos=False)[0]
              for p in PROMPTS]
    assert [g.token_ids for g in batched] == [g.token_ids for g in single]
    ids = list(batched[0].prompt_ids)
    with torch.no_grad():
        for _ in range(6):
            ids.append(int(lm.model(torch.tensor([ids])).logits[0, -1].argmax()))
    assert list(batched[0].token_ids) == ids[len(batched[0].prompt_ids):]
    assert all(len(g.token_ids) == 6 for g in batched)
    assert batched[0].text == lm.tokenizer.decode(list(batched[0].token_ids), skip_special_tokens=True)


def test_candidates_sharing_input_tokens_share_a_row(monkeypatch):
    """Candidates of one prompt with the same leading tokens run as one row, with exact scores."""
    lm = tiny_lm("llama")
    prompt, cands = "The capital of France is", ["Paris is", "Paris.", "Rome", "x"]
    reference = _reference_scores(lm, prompt, cands)
    calls = []
    forward = lm.model.forward
    monkeypatch.setattr(lm.model, "forward", lambda *a, **k: calls.append(k["input_ids"].shape)
                        or forward(*a, **k))
    got = score_continuations(lm, [prompt], [cands])[0].sum_logprob
    assert got == pytest.approx(reference, abs=1e-5)
    shared = split_continuations(lm, prompt, cands)
    distinct_inputs = {tuple(c[:-1]) for c in shared.continuations if len(c) > 1}
    multi = [c for c in shared.continuations if len(c) > 1]
    assert len(distinct_inputs) < len(multi)   # "Paris is" and "Paris." both feed " Paris"
    widths = {len(inputs) for inputs in distinct_inputs}    # one continuation pass per width,
    assert len(calls) == 1 + len(widths)                     # no padding inside a pass
    assert sum(shape[0] for shape in calls[1:]) == len(distinct_inputs)
    assert sorted(shape[1] for shape in calls[1:]) == sorted(widths)


def test_a_boundary_merge_of_one_candidate_leaves_the_others_scores_alone():
    """"Fra" + "nce" merges across the prompt/answer boundary, " Paris" does not. Each
    candidate's score covers its own tokens only (those of prompt + candidate after the prefix
    it shares with the prompt's tokens), whatever the other candidates are: the merge must not
    shift the scored span, and so the token count and the mean, of " Paris"."""
    lm = tiny_lm("llama")
    prompt = "The capital of Fra"
    prompt_ids = lm.tokenizer(prompt)["input_ids"]
    together = score_continuations(lm, [prompt], [["nce", " Paris"]], sep="")[0]
    alone = score_continuations(lm, [prompt], [[" Paris"]], sep="")[0]
    with torch.no_grad():
        for j, cand in enumerate(["nce", " Paris"]):
            full = lm.tokenizer(prompt + cand)["input_ids"]
            own = next(k for k in range(len(full)) if k >= len(prompt_ids)
                       or full[k] != prompt_ids[k])
            lp = torch.log_softmax(lm.model(torch.tensor([full])).logits[0], -1)
            ref = sum(float(lp[t - 1, full[t]]) for t in range(own, len(full)))
            assert together.sum_logprob[j] == pytest.approx(ref, abs=1e-5)
            assert together.n_tokens[j] == len(full) - own
    assert own == len(prompt_ids)                          # " Paris" does not merge
    assert together.sum_logprob[1] == pytest.approx(alone.sum_logprob[0], abs=1e-5)
    assert together.mean_logprob[1] == pytest.approx(alone.mean_logprob[0], abs=1e-6)
    assert together.n_tokens[1] == alone.n_tokens[0]


def test_a_chat_template_that_writes_bos_gets_one_bos():
    """A chat template that starts with the BOS token itself (as Gemma's does) plus a tokenizer
    that adds one would give two: encode keeps one, and chat-formatted scoring starts with one."""
    from tunescope.engine.batching import encode
    lm = tiny_lm("llama", chat=True)
    lm.tokenizer.chat_template = "{{ bos_token }}" + lm.tokenizer.chat_template
    text = lm.format_prompt("The capital of France is", chat=True)
    assert text.startswith("<bos>")
    raw = lm.tokenizer(text)["input_ids"]
    assert raw[:2] == [1, 1]                                # what the tokenizer alone gives
    (ids,) = encode(lm, [text])
    assert ids == raw[1:] and ids[0] == 1 and ids[1] != 1
    q = split_continuations(lm, text, ["Paris"])
    assert q.prefix[:2] != [1, 1]
    # a plain prompt is left as the tokenizer gives it
    assert encode(lm, ["Paris"])[0] == lm.tokenizer("Paris")["input_ids"]
