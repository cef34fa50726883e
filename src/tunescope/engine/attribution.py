"""Gradient x input attribution from prompt tokens to response tokens (W1), batched.

For a teacher-forced sequence ``prompt + response`` and each response token ``y_t``, the
attribution of prompt token ``j`` is ``a[j, t] = <d p_t / d e_j, e_j>``, where
``p_t = softmax(logits at the position before y_t)[y_t]`` is a probability (not a
log-probability) and ``e_j`` is the input embedding (the vector the model adds to the residual
stream for token ``j``). Parameters stay frozen: only input gradients are computed.

Speed: one forward pass per example; the per-token gradients then come from batched backward
passes (``torch.autograd.grad(..., is_grads_batched=True)``: ``chunk`` response tokens per
backward), never one Python-level backward per token. Memory is bounded by ``chunk``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tunescope.models.lm import LM


def response_probabilities(lm: LM, prompt_ids: Sequence[int], response_ids: Sequence[int]
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Input embeddings [1, P + R, d_model] (requiring grad) and the probabilities [R] of each
    response token under teacher forcing, with a graph back to the embeddings.

    Logits are computed only at the R positions that predict the response."""
    ids = torch.tensor([list(prompt_ids) + list(response_ids)], device=lm.device)
    P, R = len(prompt_ids), len(response_ids)
    embeds = lm.anatomy.embed(ids).detach().requires_grad_(True)
    keep = torch.arange(P - 1, P + R - 1, device=lm.device)
    logits = lm.model(inputs_embeds=embeds, logits_to_keep=keep, use_cache=False).logits[0]
    probs = torch.softmax(logits.float(), dim=-1)
    targets = torch.tensor(list(response_ids), device=lm.device)
    return embeds, probs[torch.arange(R, device=lm.device), targets]


def gradient_x_input(lm: LM, prompt_ids: Sequence[int], response_ids: Sequence[int],
                     chunk: int = 32) -> torch.Tensor:
    """Raw attributions ``a`` [P, R] (float32, CPU) of every prompt token (rows, BOS included
    as row 0 when present; callers drop it) to every response token's probability (columns).

    ``chunk`` response tokens share one batched backward pass.
    """
    if not response_ids:
        return torch.zeros((len(prompt_ids), 0))
    if len(prompt_ids) < 1:
        raise ValueError("empty prompt")
    P, R = len(prompt_ids), len(response_ids)
    out = torch.empty((P, R), dtype=torch.float32)
    with torch.enable_grad():
        embeds, probs = response_probabilities(lm, prompt_ids, response_ids)
        for start in range(0, R, chunk):
            stop = min(start + chunk, R)
            one_hot = torch.zeros((stop - start, R), device=probs.device)
            one_hot[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
            (grads,) = torch.autograd.grad(probs, embeds, grad_outputs=one_hot,
                                           is_grads_batched=True, retain_graph=stop < R)
            # grads: [C, 1, P + R, d_model] -> <grad, embedding> over d_model, prompt rows only
            out[:, start:stop] = (grads[:, 0, :P].float() * embeds[0, :P].detach().float()
                                  ).sum(-1).T.cpu()
    return out
