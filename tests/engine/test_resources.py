"""Resources: a batch that runs out of memory is retried at half the size and the results equal
the unbatched ones; a hub id while offline says so in one line and suggests a local path."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from tiny import tiny_lm

import tunescope
from tunescope.engine import next_token_logprobs, score_continuations
from tunescope.errors import HubUnavailableError

PROMPTS = ["The capital of France is", "Paris is", "Write a short poem about the sea. Explain",
           "I", "Translate the following sentence into French:"]
CANDIDATES = [["Paris", "Rome", "the capital of Italy"], ["in France", "big"],
              ["why", "the sky is blue"], ["like apples", "x"], ["J'aime", "les pommes", "oui"]]


def _memory_limited(monkeypatch, lm, max_rows: int, prompt_pass_only: bool = False) -> list:
    """Make ``lm.model`` raise torch.OutOfMemoryError for inputs of more than ``max_rows``
    rows; with ``prompt_pass_only`` only prompt passes (calls without a cache) are limited.
    Returns the list of (rows, ran) of every limited call."""
    calls: list[tuple[int, bool]] = []
    forward = lm.model.forward

    def limited(*args, **kwargs):
        rows = kwargs["input_ids"].shape[0]
        checked = not prompt_pass_only or (kwargs.get("cache") is None
                                           and kwargs.get("past_key_values") is None)
        if checked:
            calls.append((rows, rows <= max_rows))
            if rows > max_rows:
                raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {rows} GiB")
        return forward(*args, **kwargs)

    monkeypatch.setattr(lm.model, "forward", limited)
    return calls


def test_next_token_out_of_memory_halves_the_batch_and_equals_unbatched(monkeypatch, caplog):
    lm = tiny_lm("llama")
    single = torch.cat([next_token_logprobs(lm, [p], batch_size=1) for p in PROMPTS])
    calls = _memory_limited(monkeypatch, lm, max_rows=2)
    with caplog.at_level(logging.WARNING, logger="tunescope.engine.batching"):
        batched = next_token_logprobs(lm, PROMPTS, batch_size=8)
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=0)
    # One bucket of 5 prompts: 5 rows fail, then 4 (batch size 8 -> 4), then 2 run (4 -> 2);
    # the halved size is kept for the rest: 2 + 2 + 1 rows.
    assert calls == [(5, False), (4, False), (2, True), (2, True), (1, True)]
    assert [r.getMessage() for r in caplog.records] == [
        "out of memory; retrying with batch size 4", "out of memory; retrying with batch size 2"]


def test_scoring_out_of_memory_halves_the_batch_and_equals_unbatched(monkeypatch):
    lm = tiny_lm("llama")
    single = [score_continuations(lm, [p], [c], batch_size=1)[0]
              for p, c in zip(PROMPTS, CANDIDATES)]
    calls = _memory_limited(monkeypatch, lm, max_rows=1, prompt_pass_only=True)
    batched = score_continuations(lm, PROMPTS, CANDIDATES, batch_size=4)
    for got, want in zip(batched, single):
        np.testing.assert_allclose(got.sum_logprob, want.sum_logprob, atol=1e-4, rtol=0)
        assert got.n_tokens.tolist() == want.n_tokens.tolist()
    # Buckets of 4 and 1 prompts: 4 rows fail, 2 fail, then one prompt per pass (kept at 1).
    assert calls == [(4, False), (2, False)] + [(1, True)] * 5


def test_out_of_memory_at_batch_size_one_is_raised(monkeypatch):
    lm = tiny_lm("llama")
    _memory_limited(monkeypatch, lm, max_rows=0)
    with pytest.raises(torch.OutOfMemoryError):
        next_token_logprobs(lm, PROMPTS[:2], batch_size=2)


# --- a hub id while offline ------------------------------------------------------------------

def test_hub_id_offline_says_so_and_suggests_a_local_path(monkeypatch, tmp_path):
    """HF_HUB_OFFLINE=1 and an empty cache: one line naming the id, saying the hub cannot be
    reached, and how to pass a local directory instead."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(HubUnavailableError) as info:
        tunescope.load("some-org/some-model")
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert message.startswith("cannot reach the model hub for 'some-org/some-model' (offline?)")
    assert message.endswith("download the model elsewhere and pass its local directory, e.g. "
                            "tunescope.load('/path/to/model') or `--base /path/to/model`")


def test_cli_hub_id_offline_exits_2_with_one_line(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-m", "tunescope.cli", "predict",
                           "some-org/some-model", "hello"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "cannot reach the model hub for 'some-org/some-model' (offline?)" in lines[0]
    assert "pass its local directory" in lines[0]
