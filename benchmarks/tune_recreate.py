"""gemma-3-270m-sft: prepared from the shipped adapter vs re-created from its recipe (issue 16).

    python benchmarks/tune_recreate.py [--name gemma-3-270m-sft] [--skip-recreate]

1. Preparing from the shipped adapter: the time to merge it into the prepared base and save the
   model (what `tunescope models pull gemma-3-270m-sft` does once the base is prepared).
2. Re-creating: `tunescope.tune` with the shipped recipe (base, data, every hyperparameter,
   seed) on this machine, timed (goal: at most 15 minutes on 2 CPU cores).
3. How close the two are: the adapters' tensors (bit-identical? max abs difference), and both
   merged models' next-token log-probabilities on the held-out built-in instructions (max abs
   difference, share of prompts with the same greedy next token).

On the machine that made the shipped adapter, with the same number of threads, the re-created
adapter is expected to be bit-identical; elsewhere (another CPU's bfloat16 kernels, another
torch) it differs in rounding, and the comparison says by how much.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

import tunescope
from tunescope.data.sft import builtin_sft
from tunescope.models import bundled
from tunescope.tuning import TuneConfig, tune


def logprobs_of(directory: Path, prompts: list[str]) -> torch.Tensor:
    from tunescope.engine.forward import next_token_logprobs
    lm = tunescope.load(directory)
    return next_token_logprobs(lm, [lm.format_prompt(p, chat=True) for p in prompts])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="gemma-3-270m-sft")
    parser.add_argument("--skip-recreate", action="store_true")
    args = parser.parse_args()
    model = bundled.get(args.name)
    recipe = json.loads((model.adapter_dir / "tunescope-tune.json").read_text())
    base_dir = bundled.pull(model.base)
    prompts = [e.messages[-2]["content"] for e in builtin_sft("heldout")][:40]

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        bundled.merge_adapter(base_dir, model.adapter_dir, tmp / "shipped")
        prepare = time.perf_counter() - start
        print(f"prepared {args.name} from the shipped adapter in {prepare:.1f} s "
              f"(merge + save; the base was already prepared)")
        if args.skip_recreate:
            return
        config = TuneConfig.from_dict(recipe["config"])
        start = time.perf_counter()
        remade = tune(recipe["base"]["spec"], recipe["data"]["source"], tmp / "remade", config,
                      max_examples=recipe["data"].get("max_examples"))
        seconds = time.perf_counter() - start
        print(f"re-created from the recipe in {seconds / 60:.1f} min ({remade.recipe['steps']} "
              f"steps, {remade.recipe['tokens_per_second']:.0f} tokens/s, final loss "
              f"{remade.final_loss:.4f}; shipped recipe: {recipe['final_loss']:.4f}, "
              f"{recipe['seconds'] / 60:.1f} min of steps, {recipe['threads']} threads)")
        shipped = load_file(str(model.adapter_dir / "adapter_model.safetensors"))
        again = load_file(str(tmp / "remade" / "adapter" / "adapter_model.safetensors"))
        same = shipped.keys() == again.keys() and all(torch.equal(shipped[k], again[k])
                                                      for k in shipped)
        diff = max((shipped[k] - again[k]).abs().max().item() for k in shipped)
        scale = max(shipped[k].abs().max().item() for k in shipped)
        print(f"adapter tensors: bit-identical {same}; max abs difference {diff:.3g} "
              f"(largest entry {scale:.3g})")
        a = logprobs_of(tmp / "shipped", prompts)
        b = logprobs_of(tmp / "remade", prompts)
        agree = (a.argmax(-1) == b.argmax(-1)).float().mean().item()
        print(f"next-token log-probabilities on {len(prompts)} held-out instructions: max abs "
              f"difference {(a - b).abs().max().item():.3g} (values down to "
              f"{a.min().item():.3g}); "
              f"same greedy next token {agree:.1%}")


if __name__ == "__main__":
    main()
