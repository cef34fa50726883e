"""Tuning throughput of `tunescope tune` against a plain forward+backward (issue 16).

    python benchmarks/tune_speed.py [--model gemma-3-270m] [--batches 6] [--batch-size 8]

Both sides see the same batches of the built-in instruction set, tokenised the same way, with the
same LoRA adapters (r = 8 on every linear layer of the blocks) as the only trainable parameters:

- baseline: ``model(input_ids, attention_mask, labels)`` (Hugging Face computes the logits of
  every position and the loss), then ``backward()``; no optimiser, no clipping. Run once in
  float32 and once under the precision tunescope picks (bfloat16 autocast where the CPU has
  native bfloat16 arithmetic);
- tunescope: :func:`tunescope.tuning.loop.train` on the same batches (the output projection at
  response positions only, AdamW, clipping, the progress callback), at its default precision.

Prints tokens/s of each (tokens = non-padding input tokens) and the ratio tunescope / baseline
at the same precision (goal >= 0.8) and against the float32 baseline. The first batch of each
side is a warm-up and not timed.
"""

from __future__ import annotations

import argparse
import time

import torch

import tunescope
from tunescope.data.sft import builtin_sft
from tunescope.tuning import TuneConfig
from tunescope.tuning.loop import autocast, collate, resolve_precision, schedule, train
from tunescope.tuning.run import _hf, _trainable_model
from tunescope.tuning.template import chat_template, encode_example


def baseline(model, batches, precision: str) -> float:
    """Tokens/s of plain forward (full logits, HF loss) + backward over ``batches``."""
    tokens, seconds = 0, 0.0
    for i, batch in enumerate(batches):
        start = time.perf_counter()
        with autocast(torch.device("cpu"), precision):
            loss = model(**batch).loss
        loss.backward()
        model.zero_grad(set_to_none=True)
        if i:                                         # the first batch warms up
            seconds += time.perf_counter() - start
            tokens += int(batch["attention_mask"].sum())
    return tokens / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--batches", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    lm = tunescope.load(args.model, dtype=torch.float32, device="cpu")
    template, _ = chat_template(lm.tokenizer)
    examples = builtin_sft("train")
    config = TuneConfig(batch_size=args.batch_size, steps=args.batches + 1, warmup_steps=0,
                        checkpoint_every=10_000)
    encoded = [encode_example(lm, e, template) for e in examples]
    plan = schedule(len(encoded), config)
    batches = [collate([encoded[i] for i in step], lm.tokenizer.pad_token_id) for step in plan]
    model = _trainable_model(lm.model, config)
    hf = _hf(model)
    precision = resolve_precision("auto", torch.device("cpu"))
    n_tokens = sum(int(b["attention_mask"].sum()) for b in batches[1:])
    n_response = sum(int((b["labels"] != -100).sum()) for b in batches[1:])
    print(f"{args.model}: {len(batches) - 1} timed batches of {args.batch_size}, "
          f"{n_tokens:,} tokens ({n_response:,} response tokens); threads "
          f"{torch.get_num_threads()}; tunescope's precision: {precision}")

    base32 = baseline(hf, batches, "float32")
    base_p = baseline(hf, batches, precision) if precision != "float32" else base32

    # tunescope's loop on the same batches
    times: list[tuple[int, float]] = []
    state = train(hf, encoded, config, pad_id=lm.tokenizer.pad_token_id,
                  softcap=lm.anatomy.logit_softcap, plan=plan,
                  on_step=lambda s, sec: times.append((s.tokens, sec)))
    ours_tokens = times[-1][0] - times[0][0]
    ours = ours_tokens / sum(sec for _, sec in times[1:])
    assert ours_tokens == n_tokens, (ours_tokens, n_tokens)
    print(f"baseline forward+backward, float32:       {base32:8.1f} tokens/s")
    if precision != "float32":
        print(f"baseline forward+backward, {precision} autocast: {base_p:8.1f} tokens/s")
    print(f"tunescope tune loop ({precision}):         {ours:8.1f} tokens/s  "
          f"(final loss {state.losses[-1]:.3f})")
    print(f"ratio tunescope / baseline at the same precision: {ours / base_p:.2f}x "
          f"(goal >= 0.8x)")
    print(f"ratio tunescope / float32 baseline: {ours / base32:.2f}x")


if __name__ == "__main__":
    main()
