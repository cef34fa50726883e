"""Tiny randomly initialised models of every supported family, built in code (no files, no hub).

Each model has 2-4 layers and a hidden size of 32-64, so a forward pass takes milliseconds.
The tokenizer is a byte-level BPE trained in memory on a few sentences; it tokenises any text,
returns character offsets, and (for the "instruct" variant) carries a chat template.
"""

from __future__ import annotations

import functools

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    Gemma2Config,
    Gemma2ForCausalLM,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from tunescope.models.lm import LM

CORPUS = [
    "The capital of France is Paris. The capital of Italy is Rome.",
    "Paris is the capital of France, and Berlin is the capital of Germany.",
    "Write a short poem about the sea. Explain why the sky is blue.",
    "The official language of Spain is Spanish. Tokyo is located in Japan.",
    "Translate the following sentence into French: I like apples.",
    "Classify the sentiment of this review: the film was wonderful!",
    "Input: 3 + 4 = ? Answer: 7. Summarize the text below in one line.",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
FAMILIES = ("llama", "gemma2", "gemma3", "gpt2", "gpt_neox")


@functools.lru_cache(maxsize=None)
def _tokenizer_json() -> str:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=["<pad>", "<bos>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    return tok.to_str()


def tiny_tokenizer(chat: bool = False, bos: bool = True) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (vocab 320); prepends ``<bos>`` when ``bos``."""
    backend = Tokenizer.from_str(_tokenizer_json())
    if bos:
        from tokenizers.processors import TemplateProcessing
        backend.post_processor = TemplateProcessing(
            single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", 1)])
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>",
                                  pad_token="<pad>")
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    return tok


CONTEXT = 1024
"""Positions of the rotary-embedding models (no weights depend on it): room for the longest
built-in input under the tiny tokenizer (an instruction prompt of about 300 tokens), which the
engine would refuse beyond the context. GPT-2's learnt positions stay at 256."""


def _config(family: str, vocab: int, attn: str):
    common = dict(vocab_size=vocab, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    if family == "llama":
        return LlamaForCausalLM, LlamaConfig(
            hidden_size=48, intermediate_size=96, num_hidden_layers=3, num_attention_heads=6,
            num_key_value_heads=2, max_position_embeddings=CONTEXT, tie_word_embeddings=False, **common)
    if family == "gemma2":
        return Gemma2ForCausalLM, Gemma2Config(
            hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, max_position_embeddings=CONTEXT, sliding_window=8,
            final_logit_softcapping=30.0, attn_logit_softcapping=50.0, **common)
    if family == "gemma3":
        return Gemma3ForCausalLM, Gemma3TextConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4,
            num_key_value_heads=1, head_dim=16, max_position_embeddings=CONTEXT, sliding_window=8,
            layer_types=["sliding_attention", "sliding_attention", "full_attention", "sliding_attention"],
            **common)
    if family == "gpt2":
        return GPT2LMHeadModel, GPT2Config(n_embd=32, n_layer=3, n_head=4, n_positions=256,
                                           **common)
    if family == "gpt_neox":
        return GPTNeoXForCausalLM, GPTNeoXConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
            max_position_embeddings=CONTEXT, rotary_pct=0.5, use_parallel_residual=True,
            tie_word_embeddings=False, **common)
    raise ValueError(family)


def tiny_model(family: str, attn: str = "sdpa", seed: int = 0):
    """A randomly initialised ``family`` model in float32, eval mode.

    Gemma 2 has no SDPA path in transformers (attention soft-capping): it always runs eager.
    """
    if family == "gemma2":
        attn = "eager"
    cls, config = _config(family, 320, attn)
    config._attn_implementation = attn
    torch.manual_seed(seed)
    model = cls(config).eval()
    # Larger random weights than the default init, so that outputs vary with the input.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.2)
    return model


def tiny_lm(family: str = "llama", attn: str = "sdpa", chat: bool = False, seed: int = 0) -> LM:
    """A tiny ``LM`` of ``family`` ready for every analysis."""
    return LM.from_hf(tiny_model(family, attn, seed), tiny_tokenizer(chat=chat),
                      name=f"tiny-{family}", source="memory")


FACTS = [("France", "Paris"), ("Italy", "Rome"), ("Germany", "Berlin"), ("Spain", "Madrid"),
         ("Japan", "Tokyo"), ("Egypt", "Cairo")]
FACT_TEMPLATES = ["The capital of [X] is [Y].", "The capital city of [X] is [Y].",
                  "[X] has its capital in [Y]."]


@functools.lru_cache(maxsize=None)
def _trained_state(family: str, steps: int):
    lm = tiny_lm(family)
    texts = [t.replace("[X]", s).replace("[Y]", o) for s, o in FACTS for t in FACT_TEMPLATES]
    batch = lm.tokenizer(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    model = lm.model
    model.train()
    model.requires_grad_(True)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    for _ in range(steps):
        opt.zero_grad()
        model(**batch, labels=labels).loss.backward()
        opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def tiny_trained_lm(family: str = "llama", steps: int = 80) -> LM:
    """A tiny ``family`` model trained for a moment on :data:`FACTS` phrased by
    :data:`FACT_TEMPLATES`, so that it answers (some of) them: a model that knows facts."""
    model = tiny_model(family)
    model.load_state_dict(_trained_state(family, steps))
    return LM.from_hf(model, tiny_tokenizer(), name=f"tiny-{family}-facts", source="memory")


def fact_relations():
    """The trained facts as one ParaRel-style relation (templates with [Y] last)."""
    from tunescope.data.types import Fact, Relation, Template
    return [Relation("P36", tuple(Template("P36", t) for t in FACT_TEMPLATES),
                     tuple(Fact("P36", s, o) for s, o in FACTS))]
