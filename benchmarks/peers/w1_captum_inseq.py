"""W1 attribution, tunescope against captum and inseq: gradient x input of each response token's
probability with respect to every prompt token's embedding, on the same greedy responses.

Prompts: the first ``--prompts`` built-in instruction prompts, shown raw; responses: greedy
continuations of exactly ``--new-tokens`` tokens (end of sequence held back until then), the same
token ids for every tool. The default model is SmolLM2 (a 49k vocabulary): captum and inseq
run one full forward and backward pass per response token, which on Gemma 3's 262k vocabulary
takes about a second each on 2 CPU cores. Each tool
produces the raw matrix a[j, t] = <d p_t / d e_j, e_j> [prompt tokens x response tokens] for every
prompt:

- tunescope: ``engine.attribution.gradient_x_input`` (one forward pass, batched backward passes);
- captum: ``InputXGradient`` on the input embeddings, one ``attribute`` call per response token
  (target = that token's probability), summed over the embedding dimension;
- inseq: ``input_x_gradient`` with ``attributed_fn="probability"`` on the same text, its granular
  (unaggregated) target-side attributions summed over the embedding dimension.

Prints, per peer, the largest difference of the matrices (absolute, and relative to the peer's
largest magnitude) and the wall-time ratio over all prompts (responses not included).

    python benchmarks/peers/w1_captum_inseq.py [--model smollm2-135m-instruct] [--prompts 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import agreement, ensure_peers, line, machine, model_dir  # noqa: E402


def captum_matrix(model, ids: list[int], n_prompt: int, embed):
    """captum's gradient x input [P, R] for one sequence (one attribute call per response
    token, as captum attributes one target at a time)."""
    import torch
    from captum.attr import InputXGradient

    P, R = n_prompt, len(ids) - n_prompt
    targets = torch.tensor(ids[P:])

    def probabilities(embeds):                    # [B, R]: p of every response token
        logits = model(inputs_embeds=embeds, use_cache=False).logits[:, P - 1:-1].float()
        return torch.softmax(logits, -1).gather(-1, targets[None, :, None].expand(
            embeds.shape[0], R, 1))[..., 0]

    embeds = embed(torch.tensor([ids])).detach()
    method = InputXGradient(probabilities)
    out = torch.empty((P, R))
    for t in range(R):
        attr = method.attribute(embeds, target=t)            # [1, P + R, d]
        out[:, t] = attr[0, :P].detach().float().sum(-1)
    return out.numpy()


def inseq_matrix(attribution_model, prompt: str, full: str, ids: list[int], n_prompt: int):
    """inseq's gradient x input [P, R] for one sequence, summed over the embedding dimension;
    None when inseq tokenises the text differently from ``ids``."""
    import numpy as np
    out = attribution_model.attribute(input_texts=prompt, generated_texts=full,
                                      attributed_fn="probability", show_progress=False,
                                      skip_special_tokens=False)
    seq = out.sequence_attributions[0]
    tokens = [t.id for t in seq.target]
    if tokens != list(ids):
        return None
    granular = seq.target_attributions.float().numpy()       # [T, gen, d] (NaN where masked)
    summed = np.nansum(granular, axis=-1)                      # [T, gen]
    return summed[:n_prompt, -(len(ids) - n_prompt):]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--prompts", type=int, default=10)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--peers", default="captum,inseq")
    args = parser.parse_args(argv)
    peers = args.peers.split(",")
    ensure_peers(peers)

    import torch

    import tunescope
    from tunescope.data import builtin_instructions
    from tunescope.engine.attribution import gradient_x_input

    lm = tunescope.load(model_dir(args.model), dtype=torch.float32)
    prompts = [p.text for p in builtin_instructions()[:args.prompts]]
    seqs, texts = [], []
    with torch.inference_mode():
        for text in prompts:                  # greedy, exactly --new-tokens (EOS held back)
            ids = lm.tokenizer(text, return_tensors="pt")["input_ids"]
            out = lm.model.generate(ids, max_new_tokens=args.new_tokens,
                                    min_new_tokens=args.new_tokens, do_sample=False)
            seqs.append((ids[0].tolist(), out[0, ids.shape[1]:].tolist()))
            texts.append(lm.tokenizer.decode(seqs[-1][1]))
    n_tokens = sum(len(r) for _, r in seqs)
    print(f"{machine()}; model {args.model}; {len(prompts)} prompts, {n_tokens} response tokens "
          f"(mean prompt {sum(len(p) for p, _ in seqs) / len(seqs):.1f} tokens)", flush=True)

    start = time.perf_counter()
    ours = [gradient_x_input(lm, p, r).numpy() for p, r in seqs]
    ours_s = time.perf_counter() - start

    if "captum" in peers:
        start = time.perf_counter()
        theirs = [captum_matrix(lm.model, p + r, len(p), lm.anatomy.embed) for p, r in seqs]
        peer_s = time.perf_counter() - start
        worst = max((agreement(a, b) for a, b in zip(ours, theirs)), key=lambda d: d[1])
        print(line("W1 attribution vs captum", worst, ours_s, peer_s,
                   f"{len(seqs)} prompts x {n_tokens} response tokens"), flush=True)

    if "inseq" in peers:
        import inseq
        model = inseq.load_model(lm.model, "input_x_gradient", tokenizer=lm.tokenizer)
        start = time.perf_counter()
        theirs = [inseq_matrix(model, text, text + response, p + r, len(p))
                  for text, response, (p, r) in zip(prompts, texts, seqs)]
        peer_s = time.perf_counter() - start
        pairs = [(a, b) for a, b in zip(ours, theirs) if b is not None]
        if not pairs:
            print("W1 attribution vs inseq: inseq tokenised every text differently; no "
                  "comparison")
            return
        worst = max((agreement(a, b) for a, b in pairs), key=lambda d: d[1])
        print(line("W1 attribution vs inseq", worst, ours_s, peer_s,
                   f"{len(seqs)} prompts x {n_tokens} response tokens")
              + (f" ({len(seqs) - len(pairs)} prompts tokenised differently, not compared)"
                 if len(pairs) < len(seqs) else ""))


if __name__ == "__main__":
    main()
