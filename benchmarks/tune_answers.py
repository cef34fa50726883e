"""Does the tuned model answer where the base continues the text? (issue 16)

    python benchmarks/tune_answers.py [--base gemma-3-270m] [--tuned gemma-3-270m-sft]
                                      [--n 100] [--max-new-tokens 64]

On the held-out split of the built-in instruction set (never trained on), each model generates
greedily, the way W1 asks it (``chat: auto``: through the model's chat template where it has
one, the raw instruction otherwise). The base is also asked through the tuned model's template,
so that the format alone is not mistaken for tuning. A response *answers* when it is non-empty
and does not repeat the prompt (no run of 6 words of the prompt, lower-cased, appears in it);
it *stops* when the model ends it (EOS or its end-of-turn token) within the token budget; an
answer that stops is what an instruction-tuned model gives (a base model, even when its
continuation happens not to repeat the prompt, runs on to the budget). The script prints, per
model and prompt format, the answer rate, the stop rate, the rate of both, the rate of exact
arithmetic answers (the number in the reference response appears in the response) and three
examples.
"""

from __future__ import annotations

import argparse
import re

import tunescope
from tunescope.data.sft import builtin_sft
from tunescope.engine.generation import generate_greedy


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def repeats(prompt: str, response: str, n: int = 6) -> bool:
    """Whether ``response`` holds a run of ``n`` consecutive words of ``prompt``."""
    p, r = words(prompt), words(response)
    grams = {tuple(p[i:i + n]) for i in range(len(p) - n + 1)}
    return any(tuple(r[i:i + n]) in grams for i in range(len(r) - n + 1))


def numbers(text: str) -> list[str]:
    return re.findall(r"-?\d+(?:\.\d+)?", text.replace(",", ""))


def evaluate(lm, prompts, examples, max_new_tokens: int) -> dict:
    outputs = generate_greedy(lm, prompts, max_new_tokens=max_new_tokens)
    answered = stopped = both = arithmetic = arithmetic_right = 0
    rows = []
    for example, prompt, out in zip(examples, prompts, outputs):
        text = out.text.strip()
        ok = bool(text) and not repeats(example.instruction, text)
        answered += ok
        stops = len(out.token_ids) < max_new_tokens
        stopped += stops
        both += ok and stops
        if example.category == "arithmetic":
            arithmetic += 1
            expected = numbers(example.response)
            arithmetic_right += bool(expected) and expected[0] in numbers(text)
        rows.append((example.instruction, text))
    n = len(examples)
    return {"answer_rate": answered / n, "stop_rate": stopped / n, "answer_and_stop": both / n,
            "arithmetic_exact": arithmetic_right / max(arithmetic, 1), "n": n,
            "n_arithmetic": arithmetic, "examples": rows[:3]}


def show(name: str, how: str, result: dict) -> None:
    print(f"{name:24s} {how:28s} answers {result['answer_rate']:6.1%}  stops "
          f"{result['stop_rate']:6.1%}  both {result['answer_and_stop']:6.1%}  "
          f"arithmetic exact {result['arithmetic_exact']:6.1%} "
          f"(n = {result['n']}, {result['n_arithmetic']} arithmetic)")
    for instruction, text in result["examples"]:
        print(f"    {instruction[:60]!r} -> {text[:100]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="gemma-3-270m")
    parser.add_argument("--tuned", default="gemma-3-270m-sft")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    examples = builtin_sft("heldout")[:args.n]
    user_texts = [e.messages[-2]["content"] for e in examples]

    tuned = tunescope.load(args.tuned)
    tuned_prompts = [tuned.format_prompt(t, chat=tuned.has_chat_template) for t in user_texts]
    tuned_result = evaluate(tuned, tuned_prompts, examples, args.max_new_tokens)
    template = tuned.tokenizer.chat_template
    del tuned

    base = tunescope.load(args.base)
    raw = evaluate(base, [base.format_prompt(t, chat=base.has_chat_template) for t in user_texts],
                   examples, args.max_new_tokens)
    show(args.base, "chat: auto (raw prompt)" if not base.has_chat_template
         else "chat: auto (its template)", raw)
    if template:
        templated = [base.tokenizer.apply_chat_template(
            [{"role": "user", "content": t}], chat_template=template, tokenize=False,
            add_generation_prompt=True) for t in user_texts]
        show(args.base, "the tuned model's template",
             evaluate(base, templated, examples, args.max_new_tokens))
    show(args.tuned, "chat: auto (its template)", tuned_result)


if __name__ == "__main__":
    main()
