"""Gradient x input attribution from prompt tokens to response tokens (W1), batched.

For a teacher-forced sequence ``prompt + response`` and each response token ``y_t``, the
attribution of prompt token ``j`` is ``a[j, t] = <d p_t / d e_j, e_j>``, where
``p_t = softmax(logits at the position before y_t)[y_t]`` is a probability (not a
log-probability) and ``e_j`` is the input embedding (the vector the model adds to the residual
stream for token ``j``). Parameters stay frozen: only input gradients are computed.

Speed: one forward pass per example, logits only where a response token is predicted; the
per-token gradients then come from batched backward passes (``torch.autograd.grad(...,
is_grads_batched=True)``: ``chunk`` response tokens per backward), never one Python-level
backward per token.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tunescope.models.hooks import trace
from tunescope.models.lm import LM


def gradient_x_input(lm: LM, prompt_ids: Sequence[int], response_ids: Sequence[int],
                     chunk: int = 16) -> torch.Tensor:
    """Raw attributions ``a`` [P, R] (float32, CPU) of every prompt token (rows, BOS included
    as row 0 when present; callers drop it) to every response token's probability (columns).

    The blocks run once on ``prompt + response`` (stopping before the final norm); then, per
    chunk of ``chunk`` response tokens, only their positions go through the final norm and the
    unembedding, and one batched backward pass gives their gradients. Memory per chunk grows
    with ``chunk`` (a [chunk, chunk, vocab] softmax gradient) and the sequence length, not with
    the number of response tokens.
    """
    if not response_ids:
        return torch.zeros((len(prompt_ids), 0))
    if len(prompt_ids) < 1:
        raise ValueError("empty prompt")
    P, R = len(prompt_ids), len(response_ids)
    last = lm.anatomy.n_layers - 1
    ids = torch.tensor([list(prompt_ids) + list(response_ids)], device=lm.device)
    targets = torch.tensor(list(response_ids), device=lm.device)
    out = torch.empty((P, R), dtype=torch.float32)
    with torch.enable_grad():
        embeds = lm.anatomy.embed(ids).detach().requires_grad_(True)
        with trace(lm, points=("resid_post",), layers=[last], detach=False,
                   stop_early=True) as rec:
            lm.model(inputs_embeds=embeds, use_cache=False)
        resid = rec["resid_post"][last][0]                      # [P + R, d_model]
        for start in range(0, R, chunk):
            stop = min(start + chunk, R)
            C = stop - start
            logits = lm.anatomy.logits(resid[P - 1 + start:P - 1 + stop]).float()   # [C, vocab]
            probs = torch.softmax(logits, dim=-1)[torch.arange(C), targets[start:stop]]
            (grads,) = torch.autograd.grad(probs, embeds, grad_outputs=torch.eye(C, device=probs.device),
                                           is_grads_batched=True, retain_graph=stop < R)
            # grads: [C, 1, P + R, d_model] -> <grad, embedding> over d_model, prompt rows only
            out[:, start:stop] = (grads[:, 0, :P].float() * embeds[0, :P].detach().float()
                                  ).sum(-1).T.cpu()
    return out
