"""How an instruction example becomes training tokens: the chat template, and the labels that
put the loss on the response tokens only.

A model with a chat template (an instruct model's tokenizer) is trained in its own format. A
base model has none; it gets :data:`DEFAULT_TEMPLATE`, a plain-text format that every tokenizer
can write::

    ### Instruction:
    {the user's message}

    ### Response:
    {the assistant's answer}<eos>

(a system message, when an example has one, comes first, followed by a blank line). The tuned
model's tokenizer is saved with this template as its chat template, so every analysis that
shows prompts through the chat template (W1 with ``chat: auto``) asks the tuned model in the
format it was tuned on, while the base model, which has no template, gets raw prompts.

Tokens of one example (:func:`encode_example`): the prompt, everything up to where the last
assistant turn begins (the template with ``add_generation_prompt``), encoded exactly as the
engine encodes a prompt at inference (:func:`tunescope.engine.batching.encode`: special tokens
added, one BOS), then the response, the rest of the formatted text (the last assistant message
and the template's end-of-turn text), encoded without special tokens. Labels are -100 (no loss)
at every prompt position and the token id at every response position, so that the loss covers
the answer and its end-of-turn marker and nothing of the instruction. Earlier assistant turns
of a multi-turn example are context, not targets.
"""

from __future__ import annotations

from dataclasses import dataclass

from tunescope.data.sft import SFTExample
from tunescope.errors import DataError

IGNORE = -100
"""The label of a position that carries no loss (PyTorch's cross-entropy ``ignore_index``)."""

DEFAULT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n\n"
    "{% elif message['role'] == 'user' %}### Instruction:\n{{ message['content'] }}\n\n"
    "### Response:\n"
    "{% else %}{{ message['content'] }}{{ eos_token }}\n\n"
    "{% endif %}{% endfor %}"
)
"""The chat template (Jinja, as Hugging Face tokenizers take it) given to a base model that has
none. A user turn ends with ``### Response:`` and a newline, so the generation prompt is part
of it; an assistant turn ends with the tokenizer's EOS token, where generation stops."""


@dataclass(frozen=True)
class EncodedExample:
    """One example as tokens. ``input_ids`` and ``labels``: lists of equal length (tokens);
    ``labels`` is :data:`IGNORE` at prompt positions. ``n_prompt``: tokens before the
    response."""

    id: str
    input_ids: list[int]
    labels: list[int]
    n_prompt: int

    @property
    def n_response(self) -> int:
        return len(self.input_ids) - self.n_prompt


def chat_template(tokenizer) -> tuple[str, bool]:
    """The template to tune with: the tokenizer's own, or :data:`DEFAULT_TEMPLATE`; and
    whether it is the default."""
    own = getattr(tokenizer, "chat_template", None)
    if isinstance(own, str) and own.strip():
        return own, False
    return DEFAULT_TEMPLATE, True


def format_example(tokenizer, example: SFTExample, template: str) -> tuple[str, str]:
    """(prompt text, response text) of ``example`` under ``template``: the prompt ends where
    the last assistant turn begins; prompt + response is the whole formatted example."""
    messages = [dict(m) for m in example.messages]
    prompt = tokenizer.apply_chat_template(messages[:-1], chat_template=template, tokenize=False,
                                           add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False)
    if not full.startswith(prompt) or len(full) == len(prompt):
        raise DataError("the chat template does not write the conversation up to the answer "
                        "as a prefix of the whole conversation; tunescope cannot tell the "
                        "response tokens apart", path=f"example {example.id}")
    return prompt, full[len(prompt):]


def encode_example(lm, example: SFTExample, template: str, max_length: int | None = None
                   ) -> EncodedExample:
    """Tokens and labels of one example (see the module docstring). ``max_length``: the most
    tokens an example may hold (the model's context by default); a longer example is a
    :class:`DataError` naming it, never silently cut."""
    from tunescope.engine.batching import encode

    prompt, response = format_example(lm.tokenizer, example, template)
    try:
        prompt_ids = encode(lm, [prompt])[0]
    except DataError as e:            # the prompt alone is longer than the model's context
        raise DataError(str(e).replace("input 1 of 1 is ", ""),
                        path=f"example {example.id}") from None
    response_ids = lm.tokenizer(response, add_special_tokens=False)["input_ids"]
    if not response_ids:
        raise DataError("empty response after formatting", path=f"example {example.id}")
    ids = list(prompt_ids) + list(response_ids)
    limit = max_length or lm.context_length
    if limit is not None and len(ids) > limit:
        raise DataError(f"{len(ids):,} tokens, more than the limit of {limit:,} tokens "
                        f"(max_length)", path=f"example {example.id}")
    labels = [IGNORE] * len(prompt_ids) + list(response_ids)
    return EncodedExample(example.id, ids, labels, len(prompt_ids))
