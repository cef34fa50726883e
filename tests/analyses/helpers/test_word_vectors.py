"""Word vectors: the mean of a word's token rows in the embedding or unembedding."""

import torch
from tiny import tiny_lm

from tunescope.analyses.helpers.word_vectors import word_token_ids, word_vectors


def test_mean_of_token_rows():
    lm = tiny_lm("llama")
    words = ["capital", "Paris", "wonderful"]
    ids = word_token_ids(lm, words)
    vec = word_vectors(lm, words)
    for i, seq in enumerate(ids):
        torch.testing.assert_close(vec[i], lm.anatomy.embed.weight[seq].mean(0))
    out = word_vectors(lm, words, "unembed")
    torch.testing.assert_close(out[1], lm.anatomy.unembed.weight[ids[1]].mean(0))


def test_gemma_embedding_scale_is_included():
    lm = tiny_lm("gemma3")
    ids = word_token_ids(lm, ["sea"])[0]
    with torch.no_grad():
        expected = lm.anatomy.embed(torch.tensor([ids]))[0].mean(0)
    torch.testing.assert_close(word_vectors(lm, ["sea"])[0], expected)


def test_token_ids_from_the_backend_equal_the_tokenizer_call():
    lm = tiny_lm("llama")
    words = ["capital", "Paris", "wonderful", "naïve", "e-mail", "U.S.", "x", "zebra"]
    called = lm.tokenizer([" " + w for w in words], add_special_tokens=False)["input_ids"]
    # the tokenizer call's ids, less a leading lone-space token before other tokens
    expected = [ids[1:] if len(ids) > 1 and lm.tokenizer.decode(ids[:1]) == " " else ids
                for ids in called]
    assert word_token_ids(lm, words) == expected
    assert all(lm.tokenizer.bos_token_id not in ids for ids in expected)


def test_leading_lone_space_token_is_dropped():
    lm = tiny_lm("llama")
    space = lm.tokenizer.convert_tokens_to_ids("\u0120")          # byte-level "Ġ": a lone space
    called = lm.tokenizer([" zebra", " capital"], add_special_tokens=False)["input_ids"]
    assert called[0][0] == space and len(called[0]) > 1 and called[1][0] != space
    ids = word_token_ids(lm, ["zebra", "capital"])
    assert ids == [called[0][1:], called[1]]
    torch.testing.assert_close(word_vectors(lm, ["zebra"])[0],
                               lm.anatomy.embed.weight[called[0][1:]].mean(0))
