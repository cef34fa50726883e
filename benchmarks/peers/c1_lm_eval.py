"""C1 candidate scoring, tunescope against lm-evaluation-harness (its Hugging Face backend's
log-likelihood requests), on the same local model directory and the same requests.

Requests: real ParaRel (../shared/data/pararel), 10 relations x 30 facts (the files' first ones),
the first ``--templates`` templates with [Y] last (default 1), each prompt against its relation's
whole object set, as C1 scores it (``--candidates K``: the gold object and the first K - 1
others). tunescope scores them with ``engine.score_continuations`` (each prompt runs once; its
key/value cache serves all of its candidates); lm-eval with ``HFLM.loglikelihood`` on (context =
prompt, continuation = " " + object). Prints the largest difference of the summed
log-probabilities and the throughput ratio (requests per second, tunescope / lm-eval), both
timed in this process after a warm-up, taking turns.

    python benchmarks/peers/c1_lm_eval.py [--model smollm2-135m-instruct] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, agreement, ensure_peers, interleaved, line, machine, model_dir  # noqa: E402

PARAREL = ROOT.parent / "shared" / "data" / "pararel"


def requests(n_relations: int, n_facts: int, n_templates: int, n_candidates: int):
    """[(prompt, [candidates])] of the first relations of the real ParaRel."""
    from tunescope.data.pararel import load_pararel
    relations = sorted(load_pararel(PARAREL, y_last_only=True, sample="first"),
                       key=lambda r: int(r.id[1:]))[:n_relations]
    out = []
    for rel in relations:
        for fact in rel.facts[:n_facts]:
            others = [o for o in rel.objects if o != fact.object]
            others = others[:n_candidates - 1] if n_candidates else others
            for template in rel.templates[:n_templates]:
                out.append((template.prompt(fact.subject), [fact.object, *others]))
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--relations", type=int, default=10)
    parser.add_argument("--facts", type=int, default=30)
    parser.add_argument("--templates", type=int, default=1)
    parser.add_argument("--candidates", type=int, default=0,
                        help="objects per prompt (0: the relation's whole object set, as C1)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    ensure_peers(["lm_eval"])

    import numpy as np
    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    import tunescope
    from tunescope.engine.scoring import score_continuations

    path = model_dir(args.model)
    work = requests(args.relations, args.facts, args.templates, args.candidates)
    n = sum(len(c) for _, c in work)
    print(f"{machine()}; model {args.model}; {len(work)} prompts, {n} (prompt, object) requests",
          flush=True)

    lm = tunescope.load(path, dtype=torch.float32)
    peer = HFLM(pretrained=path, device="cpu", dtype="float32", batch_size=args.batch_size)
    instances = [Instance(request_type="loglikelihood", doc={}, arguments=(p, " " + c), idx=0)
                 for p, cands in work for c in cands]

    def ours():
        scores = score_continuations(lm, [p for p, _ in work], [c for _, c in work],
                                     batch_size=args.batch_size, desc="tunescope")
        return np.concatenate([s.sum_logprob for s in scores])

    def theirs():
        return np.array([ll for ll, _ in peer.loglikelihood(instances, disable_tqdm=True)])

    (ours_s, peer_s), (a, b) = interleaved([ours, theirs], args.repeat)
    print(line(f"C1 scoring vs lm-eval {getattr(sys.modules['lm_eval'], '__version__', '')}",
               agreement(a, b), ours_s, peer_s, f"{n} requests"))


if __name__ == "__main__":
    main()
