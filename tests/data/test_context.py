"""Inputs longer than a model's context: the engine refuses them before any forward pass, and
:func:`tunescope.data.context.check_context` names the file, line and length of the first one
in a dataset while tokenising only the texts whose size could exceed the limit."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny import CORPUS, tiny_lm, tiny_tokenizer
from tokenizers import Tokenizer, models, normalizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from tunescope.data import (
    builtin_instructions,
    builtin_pairs,
    builtin_task,
    load_pairs,
    load_pararel,
    load_task,
    pararel,
)
from tunescope.data.context import (
    check_context,
    first_too_long,
    token_bound,
    token_count,
)
from tunescope.data.instructions import load_instruction_jsonl, numbered_instructions
from tunescope.data.pairs import numbered_pairs
from tunescope.data.tasks import numbered_examples
from tunescope.data.vocabulary import load_word_frequencies, numbered_words
from tunescope.engine.batching import encode
from tunescope.engine.forward import next_token_logprobs
from tunescope.engine.generation import generate_greedy
from tunescope.engine.scoring import score_continuations
from tunescope.errors import ContextLengthError, DataError
from tunescope.models.lm import LM, context_length

HUNDRED_TOKENS = " ".join(["Paris"] * 50)
"""100 tokens for the tiny tokenizer (BOS and 99 pieces)."""


class Counting:
    """A tokenizer that counts the texts it is asked to tokenise."""

    def __init__(self, tokenizer):
        self.tokenizer, self.texts = tokenizer, []

    def __call__(self, text, **kwargs):
        self.texts.append(text)
        return self.tokenizer(text, **kwargs)


# --- the engine --------------------------------------------------------------------------------

@pytest.fixture
def short_lm():
    """A tiny Llama whose config takes 64 positions, counting its forward passes."""
    lm = tiny_lm("llama")
    lm.model.config.max_position_embeddings = 64
    lm.forwards = 0
    forward = lm.model.forward

    def counted(*args, **kwargs):
        lm.forwards += 1
        return forward(*args, **kwargs)

    lm.model.forward = counted
    return lm


def test_the_engine_refuses_an_input_longer_than_the_context(short_lm):
    lm = short_lm
    assert lm.context_length == 64
    assert len(lm.tokenizer(HUNDRED_TOKENS)["input_ids"]) == 100
    for run in (lambda: encode(lm, ["The capital of France is", HUNDRED_TOKENS]),
                lambda: next_token_logprobs(lm, ["The capital of France is", HUNDRED_TOKENS]),
                lambda: generate_greedy(lm, [HUNDRED_TOKENS], max_new_tokens=2),
                lambda: score_continuations(lm, [HUNDRED_TOKENS], [["Paris", "Rome"]])):
        with pytest.raises(ContextLengthError) as e:
            run()
        message = str(e.value)
        assert "\n" not in message and "100 tokens long" in message, message
        assert "model 'tiny-llama' takes (64 tokens)" in message and "'Paris Paris" in message
    assert lm.forwards == 0
    next_token_logprobs(lm, ["The capital of France is"])    # short inputs still run
    assert lm.forwards == 1


def test_a_model_without_a_known_context_is_not_checked(short_lm, monkeypatch):
    lm = short_lm
    monkeypatch.setattr(LM, "context_length", property(lambda self: None))
    assert len(encode(lm, [HUNDRED_TOKENS])[0]) == 100


def test_context_length_from_configs():
    assert context_length({"max_position_embeddings": 8192}) == 8192
    assert context_length({"n_positions": 1024}) == 1024
    assert context_length({"text_config": {"max_position_embeddings": 32768}}) == 32768
    yarn = {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
    assert context_length({"max_position_embeddings": 32768, "rope_scaling": yarn}) == 131072
    llama3 = {"rope_type": "llama3", "factor": 8.0, "original_max_position_embeddings": 8192}
    assert context_length({"max_position_embeddings": 131072, "rope_scaling": llama3}) == 131072
    assert context_length({"max_position_embeddings": 2048,
                           "rope_scaling": {"type": "dynamic", "factor": 2.0}}) is None
    assert context_length({}) is None and context_length(None) is None
    assert tiny_lm("gpt2").context_length == 256                 # n_positions


# --- the data-level check ----------------------------------------------------------------------

LONG = "The quick brown fox jumps over the lazy dog. " * 2300      # about 100 KB


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_a_long_line_in_a_pairs_file_is_named_with_its_length(tmp_path):
    rows = [{"a": f"Sentence {i}.", "b": f"Another sentence {i}.", "label": i % 2}
            for i in range(6)]
    rows[3]["b"] = LONG
    path = write_jsonl(tmp_path / "pairs.jsonl", rows)
    tokenizer = Counting(tiny_tokenizer())
    tokens = token_count(tiny_tokenizer(), LONG.strip())
    assert tokens > 8192
    with pytest.raises(DataError) as e:
        check_context("pairs", load_pairs(path), tokenizer, 8192, str(path))
    assert isinstance(e.value, ContextLengthError)
    message = str(e.value)
    assert message.startswith(f"{path}:4: field 'b': {tokens:,} tokens, more than the context "
                              "of the model (8,192 tokens): 'The quick brown fox"), message
    assert "\n" not in message and len(message) < 300 + len(str(path))
    assert tokenizer.texts == [LONG.strip()]            # only the long sentence was tokenised

    csv = tmp_path / "pairs.csv"
    csv.write_text("a,b,label\nfirst,second,1\n\"two\nlines\",x,0\n" + LONG + ",y,1\n")
    with pytest.raises(ContextLengthError, match=r"pairs.csv:5: field 'a': "):
        check_context("pairs", load_pairs(csv), tiny_tokenizer(), 8192, str(csv))


def test_short_inputs_pass_without_tokenising():
    tokenizer = Counting(tiny_tokenizer())
    datasets = {"pairs": builtin_pairs(), "task": builtin_task(),
                "instructions": builtin_instructions(), "pararel": pararel(),
                "prompts": ["The capital of France is"] * 5, "vocabulary": ["cat", "dog"]}
    for kind, dataset in datasets.items():
        check_context(kind, dataset, tokenizer, 8192, "builtin")
        assert first_too_long(kind, dataset, tokenizer, 8192) is None
    assert tokenizer.texts == []


def test_inputs_near_the_limit_are_tokenised_and_measured():
    tokenizer = Counting(tiny_tokenizer())
    check_context("prompts", [HUNDRED_TOKENS], tokenizer, 100)      # exactly the limit: fine
    assert tokenizer.texts == [HUNDRED_TOKENS]
    found = first_too_long("prompts", ["short", HUNDRED_TOKENS], tokenizer, 99)
    assert (found.tokens, found.limit, found.key) == (100, 99, (1, None))
    with pytest.raises(ContextLengthError, match=r"^built-in prompts, item 2: 100 tokens"):
        check_context("prompts", ["short", HUNDRED_TOKENS], tiny_tokenizer(), 99)


def test_builtin_datasets_are_named_by_their_files():
    with pytest.raises(ContextLengthError, match=r"builtin/sentiment.jsonl:\d+: field 'text'"):
        check_context("task", builtin_task(), tiny_tokenizer(), 40, "builtin")
    with pytest.raises(ContextLengthError, match=r"builtin/instructions.jsonl:\d+: "
                                                 r"field 'prompt'"):
        check_context("instructions", builtin_instructions(), tiny_tokenizer(), 40, None)


def test_each_kind_names_the_file_line_and_field(tmp_path):
    tok = tiny_tokenizer()
    task = write_jsonl(tmp_path / "task.jsonl", [
        {"task": "t", "labels": ["a", "b"]},
        {"id": "x", "text": "fine", "label": "a"},
        {"id": "y", "text": "fine too", "label": "b", "perturbations": {"typo": LONG}}])
    with pytest.raises(ContextLengthError, match=r"task.jsonl:3: field 'perturbations.typo': "):
        check_context("task", load_task(task), tok, 8192, str(task))

    prompts = write_jsonl(tmp_path / "prompts.jsonl", [
        {"prompt": "Say hi.", "instruction": "Say hi."},
        {"prompt": LONG, "instruction": "The quick brown fox"}])
    with pytest.raises(ContextLengthError, match=r"prompts.jsonl:2: field 'prompt': "):
        check_context("instructions", load_instruction_jsonl(prompts), tok, 8192, str(prompts))

    lines = tmp_path / "prompts.txt"
    lines.write_text("The capital of France is\n\n" + LONG + "\n")
    with pytest.raises(ContextLengthError, match=r"prompts.txt:3: \d"):
        check_context("prompts", ["The capital of France is", LONG.strip()], tok, 8192,
                      str(lines))

    words = tmp_path / "words.tsv"
    words.write_text(f"word\tfrequency\ncat\t5\n{'x' * 9000}\t1\n")
    with pytest.raises(ContextLengthError, match=r"words.tsv:3: field 'word': "):
        check_context("vocabulary", list(load_word_frequencies(words).words), tok, 8192,
                      str(words))

    root = tmp_path / "pararel"
    (root / "patterns").mkdir(parents=True)
    (root / "tuples").mkdir()
    write_jsonl(root / "patterns" / "P1.jsonl", [{"pattern": "[X] lives in [Y]."},
                                                 {"pattern": "[X] is based in [Y]."}])
    write_jsonl(root / "tuples" / "P1.jsonl", [{"sub_label": "Ann", "obj_label": "Oslo"},
                                               {"sub_label": LONG, "obj_label": "Rome"}])
    with pytest.raises(ContextLengthError, match=r"tuples/P1.jsonl:2: field 'sub_label': "):
        check_context("pararel", load_pararel(root), tok, 8192, str(root))
    write_jsonl(root / "tuples" / "P1.jsonl", [{"sub_label": "Ann", "obj_label": "Oslo"},
                                               {"sub_label": "Bo", "obj_label": LONG}])
    with pytest.raises(ContextLengthError, match=r"tuples/P1.jsonl:2: field 'obj_label': "):
        check_context("pararel", load_pararel(root), tok, 8192, str(root))
    write_jsonl(root / "patterns" / "P1.jsonl", [{"pattern": "[X] lives in [Y]."},
                                                 {"pattern": LONG + "[X] is in [Y]."}])
    with pytest.raises(ContextLengthError, match=r"patterns/P1.jsonl:2: field 'pattern': "):
        check_context("pararel", load_pararel(root), tok, 20000, str(root))


def test_an_input_the_file_no_longer_holds_is_still_named(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [{"a": LONG, "b": "b", "label": 1}])
    pairs = load_pairs(path)
    path.write_text("")
    with pytest.raises(ContextLengthError, match=r"pairs.jsonl, item 1: field 'a': "):
        check_context("pairs", pairs, tiny_tokenizer(), 8192, str(path))


def test_numbered_loaders_read_what_the_loaders_read(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [{"a": "x", "b": "y", "label": 1}, {},
                                                  {"a": "z", "b": "w", "label": 0}][::2])
    assert [p for _, p in numbered_pairs(path)] == load_pairs(path)
    assert [n for n, _ in numbered_pairs(path)] == [1, 2]
    from tunescope.data.instructions import builtin_instructions_path
    from tunescope.data.tasks import builtin_task_path
    assert [e for _, e in numbered_examples(builtin_task_path())] == \
        list(load_task(builtin_task_path()).examples)
    assert [p for _, p in numbered_instructions(builtin_instructions_path(), "builtin")] == \
        builtin_instructions()
    words = tmp_path / "w.tsv"
    words.write_text("a\t1\n\nb\t3\n")
    assert numbered_words(words) == [(1, "a"), (3, "b")]


def sentencepiece_like() -> PreTrainedTokenizerFast:
    """A SentencePiece-style BPE built in memory: NFKC and lower-casing, ``▁`` for spaces and
    as a prefix, byte fallback, ``<s> ... </s>`` around each text."""
    tok = Tokenizer(models.BPE(byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(),
                                           normalizers.Prepend("▁"),
                                           normalizers.Replace(" ", "▁")])
    specials = ["<unk>", "<s>", "</s>"] + [f"<0x{i:02X}>" for i in range(256)]
    tok.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                                        show_progress=False))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>")


TOKENIZERS = [tiny_tokenizer(), sentencepiece_like()]
NASTY = ["\ufdfa" * 50, "\u0130" * 50, "\u023a" * 40, " " * 100, "\U0001f600" * 30,
         "e\u0301" * 40, "\u4e2d\u6587" * 30, "\u337b" * 30, "\t\n" * 20, ""]


@pytest.mark.parametrize("text", NASTY)
def test_the_bound_holds_where_normalisation_expands_text(text):
    for tokenizer in TOKENIZERS:
        assert token_count(tokenizer, text) <= token_bound(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_the_bound_holds_for_any_text(text):
    for tokenizer in TOKENIZERS:
        assert token_count(tokenizer, text) <= token_bound(text)
