"""C2 / C4 tracing, tunescope against nnsight: the same tensors from the same batches.

- C2 pooling: the hidden state of every layer (the embeddings and every block's output) of
  ``--sentences`` sentences of the built-in paraphrase pairs, pooled as the mean over the tokens
  and as the last token. tunescope: ``engine.pooling.pooled_states``; nnsight: ``trace`` of each
  (same, left-padded) batch saving every decoder layer's output, pooled the same way.
- C4 logit lens: at the last position of ``--prompts`` ParaRel prompts, every layer's attention
  output and MLP output projected by the unembedding (the extraction rate's default
  projection). tunescope: ``models.hooks.trace`` of those points at the last position, then
  ``anatomy.unembed``; nnsight: ``trace`` saving ``self_attn`` and ``mlp`` outputs, then the
  model's ``lm_head``.

Prints, per pair, the largest difference of the tensors and the wall-time ratio.

    python benchmarks/peers/tracing_nnsight.py [--model smollm2-135m-instruct]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import agreement, ensure_peers, interleaved, line, machine, model_dir  # noqa: E402


def batches(n: int, size: int):
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)]


def _tensor(x):
    """A saved nnsight value as a tensor (decoder layers may return a tuple)."""
    value = getattr(x, "value", x)
    return value[0] if isinstance(value, tuple) else value


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--sentences", type=int, default=256)
    parser.add_argument("--prompts", type=int, default=64,
                        help="C4 prompts (each keeps 2 x layers x vocabulary logits per tool)")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    ensure_peers(["nnsight"])

    import numpy as np
    import torch
    from nnsight import LanguageModel

    import tunescope
    from tunescope.data import builtin_pairs, pararel
    from tunescope.engine.batching import encode, left_pad
    from tunescope.engine.pooling import pooled_states, special_first
    from tunescope.models.hooks import trace

    lm = tunescope.load(model_dir(args.model), dtype=torch.float32)
    n_layers = lm.anatomy.n_layers
    peer = LanguageModel(lm.model, tokenizer=lm.tokenizer)
    pad = lm.tokenizer.pad_token_id
    print(f"{machine()}; model {args.model}; nnsight {sys.modules['nnsight'].__version__}",
          flush=True)

    # --- C2: every layer's hidden states, pooled -------------------------------------------
    sentences = list(dict.fromkeys(s for p in builtin_pairs() for s in (p.a, p.b)))
    ids = encode(lm, sentences[:args.sentences])
    chunks = batches(len(ids), args.batch_size)

    def ours_c2():
        out = pooled_states(lm, ids, poolings=("mean", "last"), batch_size=args.batch_size)
        return torch.stack([out["mean"], out["last"]]).numpy()

    def peer_c2():
        drop_first = special_first(lm.tokenizer, ids)
        mean = torch.empty((len(ids), n_layers + 1, lm.anatomy.d_model))
        last = torch.empty_like(mean)
        for idx in chunks:
            batch = left_pad([ids[i] for i in idx], pad)
            saved = []                       # filled inside the trace (nnsight runs the body)
            with torch.inference_mode(), peer.trace(batch.model_inputs()):
                saved.append(peer.model.embed_tokens.output.save())
                for i in range(n_layers):
                    saved.append(peer.model.layers[i].output.save())
            states = torch.stack([_tensor(s) for s in saved], dim=1).float()  # [B, L+1, T, d]
            mask = batch.attention_mask.clone().float()
            for row, i in enumerate(idx):
                if drop_first[i]:
                    mask[row, mask[row].nonzero()[0]] = 0.0
            weights = mask / mask.sum(1, keepdim=True)
            mean[idx] = torch.einsum("bltd,bt->bld", states, weights)
            last[idx] = states[:, :, -1]
        return torch.stack([mean, last]).numpy()

    (ours_s, peer_s), (a, b) = interleaved([ours_c2, peer_c2], repeat=1, warm_up=False)
    print(line("C2 pooled hidden states vs nnsight", agreement(a, b), ours_s, peer_s,
               f"{len(ids)} sentences x {n_layers + 1} layers x 2 poolings"), flush=True)

    # --- C4: logit lens of attention and MLP outputs at the last position -------------------
    prompts = [t.prompt(f.subject) for r in pararel() for f in r.facts for t in r.templates]
    pids = encode(lm, prompts[:args.prompts])
    chunks = batches(len(pids), args.batch_size)

    def ours_c4():
        out = []
        for idx in chunks:
            batch = left_pad([pids[i] for i in idx], pad, lm.device)
            with torch.inference_mode(), trace(lm, points=("attn_out", "mlp_out"),
                                               positions=batch.input_ids.shape[1] - 1) as rec:
                lm.model(**batch.model_inputs(), logits_to_keep=1)
                out.append(torch.stack([            # as extraction_rate: one projection
                    lm.anatomy.unembed(torch.stack([rec[p][layer] for layer in range(n_layers)]))
                    for p in ("attn_out", "mlp_out")]))                     # [2, L, B, V]
        return torch.cat(out, dim=2).float().numpy()

    def peer_c4():
        out = []
        for idx in chunks:
            batch = left_pad([pids[i] for i in idx], pad)
            attn, mlp = [], []               # filled inside the trace (nnsight runs the body)
            with torch.inference_mode(), peer.trace(batch.model_inputs()):
                for i in range(n_layers):
                    attn.append(peer.model.layers[i].self_attn.output[0][:, -1].save())
                    mlp.append(peer.model.layers[i].mlp.output[:, -1].save())
            with torch.inference_mode():
                head = lm.model.get_output_embeddings()
                out.append(torch.stack([
                    torch.stack([head(_tensor(x)) for x in saved]) for saved in (attn, mlp)]))
        return torch.cat(out, dim=2).float().numpy()

    (ours_s, peer_s), (a, b) = interleaved([ours_c4, peer_c4], repeat=1, warm_up=False)
    top = float(np.mean(a.argmax(-1) == b.argmax(-1)))
    print(line("C4 logit lens (attention and MLP outputs) vs nnsight", agreement(a, b), ours_s,
               peer_s, f"{len(pids)} prompts x {n_layers} layers x 2 outputs")
          + f"; same top-1 token {100 * top:.1f}%", flush=True)


if __name__ == "__main__":
    main()
