"""W1 (METHODS.md; Wu et al. 2024) against a reference written here from the definition, with
plain PyTorch autograd and Python loops, no tunescope scoring or engine code:

1. the greedy response to the prompt as the model reads it: the chat template's user turn where
   the model has one (``chat="auto"``), the raw prompt otherwise; an empty response scores 0.0
   (the study's code) and is counted;
2. a[j, t] = <d p_t / d e_j, e_j>, p_t = softmax(logits before y_t)[y_t], BOS row left out;
3. levels ceil(10 a / (max_j a + 1e-7)) of the clipped column, levels <= 7 zeroed;
4. D_j = ||l_j||_1 / (||l_j||_4 + 1e-7), normalised by max D + 1e-9;
5. S = sum of D~ over instruction tokens / log2(2 + their number).
"""

from __future__ import annotations

import math

import pytest
import torch
from tiny import tiny_lm

from tunescope.analyses import attribution, get
from tunescope.data.types import InstructionPrompt

PROMPTS = [
    InstructionPrompt("p1", "Summarize the text below in one line.\nInput: The sea is blue.",
                      ((0, 37),), source="a", category="writing"),
    InstructionPrompt("p2", "Translate the following sentence into French: I like apples.",
                      ((0, 46),), source="b", category="translation"),
    InstructionPrompt("p3", "The capital of Italy is Rome. Explain why the sky is blue.",
                      ((30, 58),), source="a", category="qa"),
]
MAX_NEW = 5


def reference_input(tok, prompt: InstructionPrompt, chat: bool) -> tuple[str, list]:
    """The text the model reads and the instruction spans in it."""
    if not chat:
        return prompt.text, list(prompt.instruction_spans)
    text = tok.apply_chat_template([{"role": "user", "content": prompt.text}], tokenize=False,
                                   add_generation_prompt=True)
    at = text.index(prompt.text)
    return text, [(a + at, b + at) for a, b in prompt.instruction_spans]


def reference_tokens(tok, text: str) -> tuple[list[int], list]:
    enc = tok(text, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
    if len(ids) > 1 and ids[0] == ids[1] == tok.bos_token_id:     # one BOS
        ids, offsets = ids[1:], offsets[1:]
    return ids, offsets


@torch.no_grad()
def reference_greedy(model, ids: list[int], eos: int, max_new: int) -> list[int]:
    out: list[int] = []
    for _ in range(max_new):
        nxt = int(model(torch.tensor([ids + out])).logits[0, -1].argmax())
        if nxt == eos:
            break
        out.append(nxt)
    return out


def reference_attributions(model, ids: list[int], response: list[int]) -> list[list[float]]:
    """a[j][t] for every prompt token j (BOS included) and response token t."""
    P = len(ids)
    embeds = model.get_input_embeddings()(torch.tensor(ids + response)).detach()
    embeds.requires_grad_(True)
    logits = model(inputs_embeds=embeds[None]).logits[0]
    a = [[0.0] * len(response) for _ in range(P)]
    for t, y in enumerate(response):
        p = torch.softmax(logits[P - 1 + t], dim=-1)[y]
        (g,) = torch.autograd.grad(p, embeds, retain_graph=True)
        for j in range(P):
            a[j][t] = float((g[j] * embeds[j].detach()).sum())
    return a


def reference_score(a: list[list[float]], mask: list[bool], L=10, b=7, p=4) -> float:
    if not a or not a[0]:
        return 0.0                                                   # empty response
    P, R = len(a), len(a[0])
    lv = [[0] * R for _ in range(P)]
    for t in range(R):
        col = [max(a[j][t], 0.0) for j in range(P)]
        top = max(col)
        for j in range(P):
            level = math.ceil(L * col[j] / (top + 1e-7))
            lv[j][t] = level if level > b else 0
    D = [sum(row) / (sum(x ** p for x in row) ** (1 / p) + 1e-7) for row in lv]
    top = max(D)
    norm = [d / (top + 1e-9) for d in D]
    n = sum(mask)
    return sum(d for d, m in zip(norm, mask) if m) / math.log2(2 + n)


def reference_w1(lm, prompts, chat: bool, max_new: int = MAX_NEW) -> list[dict]:
    tok, model = lm.tokenizer, lm.model
    rows = []
    for prompt in prompts:
        text, spans = reference_input(tok, prompt, chat)
        ids, offsets = reference_tokens(tok, text)
        response = reference_greedy(model, ids, tok.eos_token_id, max_new)
        drop = 1 if ids[0] == tok.bos_token_id else 0
        mask = [e > s and any(s < hi and lo < e for lo, hi in spans) for s, e in offsets][drop:]
        a = reference_attributions(model, ids, response)[drop:] if response else []
        rows.append({"response_ids": response, "score": reference_score(a, mask),
                     "n_instruction_tokens": sum(mask), "n_prompt_tokens": len(ids) - drop})
    return rows


def first_token(lm, prompt: InstructionPrompt) -> int:
    ids, _ = reference_tokens(lm.tokenizer, prompt.text)
    return reference_greedy(lm.model, ids, -1, 1)[0]


def check(res, ref):
    table = res.tables["per_prompt"]
    assert len(table) == len(ref)
    for row, want in zip(table.itertuples(), ref):
        assert row.n_response_tokens == len(want["response_ids"])
        assert row.n_prompt_tokens == want["n_prompt_tokens"]
        assert row.n_instruction_tokens == want["n_instruction_tokens"] > 0
        assert row.instruction_score == pytest.approx(want["score"], abs=1e-6)
        assert row.empty_response == (not want["response_ids"])
    n_empty = sum(not w["response_ids"] for w in ref)
    assert res.summary["n_empty_responses"] == n_empty
    assert res.summary["n_prompts"] == len(ref)
    assert res.summary["mean_instruction_score"] == pytest.approx(
        sum(w["score"] for w in ref) / len(ref), abs=1e-6)


def test_empty_response_scores_zero_and_is_counted():
    """The model's first greedy token of p1 made its end-of-sequence token: p1's response is
    empty, scores 0.0 and counts in the mean; the other prompts are scored as usual."""
    lm = tiny_lm("llama")
    stop = first_token(lm, PROMPTS[0])
    lm.tokenizer.eos_token = lm.tokenizer.convert_ids_to_tokens(stop)
    lm.model.generation_config.eos_token_id = stop
    assert lm.tokenizer.eos_token_id == stop
    ref = reference_w1(lm, PROMPTS, chat=False)
    assert not ref[0]["response_ids"] and any(r["response_ids"] for r in ref[1:])
    res = attribution(lm, PROMPTS, get("attribution").make_config(max_new_tokens=MAX_NEW))
    check(res, ref)
    table = res.tables["per_prompt"]
    assert table["instruction_score"].iloc[0] == 0.0
    assert res.summary["prompt_format"] == "raw"
    by_source = res.tables["by_source"].set_index("source")
    assert by_source.loc["a", "n"] == 2                       # the empty one counts
    assert by_source.loc["a", "mean"] == pytest.approx((0.0 + ref[2]["score"]) / 2, abs=1e-6)


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_auto_reads_the_chat_template_where_there_is_one(family):
    lm = tiny_lm(family, chat=True)
    ref = reference_w1(lm, PROMPTS, chat=True)
    res = attribution(lm, PROMPTS, get("attribution").make_config(max_new_tokens=MAX_NEW))
    assert res.summary["prompt_format"] == "chat"
    assert (res.tables["per_prompt"]["prompt_format"] == "chat").all()
    check(res, ref)
    # the raw prompt gives another reading (another prompt length at least)
    raw = reference_w1(lm, PROMPTS[:1], chat=False)
    assert raw[0]["n_prompt_tokens"] < ref[0]["n_prompt_tokens"]


def test_auto_reads_the_raw_prompt_without_a_template():
    lm = tiny_lm("llama")
    res = attribution(lm, PROMPTS, get("attribution").make_config(max_new_tokens=MAX_NEW))
    assert res.summary["prompt_format"] == "raw"
    check(res, reference_w1(lm, PROMPTS, chat=False))


def test_template_that_writes_bos_reads_one_bos():
    lm = tiny_lm("llama", chat=True)
    lm.tokenizer.chat_template = "{{ bos_token }}" + lm.tokenizer.chat_template
    res = attribution(lm, PROMPTS[:2], get("attribution").make_config(max_new_tokens=MAX_NEW,
                                                                      chat="chat"))
    check(res, reference_w1(lm, PROMPTS[:2], chat=True))
