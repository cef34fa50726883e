"""Study specs: resolution from flags, Python and YAML; errors naming file, line and field;
fingerprints and their differences; model keys; dataset limits."""

import os
import string
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunescope.data import builtin_instructions, builtin_pairs, builtin_task
from tunescope.errors import TunescopeError
from tunescope.models import loading
from tunescope.study import GROUPS, Study, from_yaml, resolve
from tunescope.study.dataset_entries import build, in_turn
from tunescope.study.dataset_entries import builtin_pairs as study_pairs
from tunescope.study.model_entries import default_key
from tunescope.study.spec import TOP_KEYS, differences, set_value

BASE, TUNED = "gemma-3-270m", "smollm2-135m-instruct"
VALID = f"""\
base: {BASE}
tuned: [{TUNED}]
analyses:
  attribution: {{max_new_tokens: 32}}
  recall: {{}}
datasets:
  pararel: {{relations: [P17, P36], max_facts: 3}}
seed: 0
"""


def error_of(text: str) -> str:
    with pytest.raises(TunescopeError) as e:
        from_yaml(text, "study.yaml")
    return str(e.value)


def test_flags_python_and_yaml_resolve_to_the_same_study():
    py = Study(base=BASE, tuned=[TUNED], analyses={"attribution": {"max_new_tokens": 32},
                                                   "recall": None},
               datasets={"pararel": {"relations": ["P17", "P36"], "max_facts": 3}}).spec
    yml = from_yaml(VALID)
    flags = resolve(set_value(set_value({"base": BASE, "tuned": [TUNED],
                                         "analyses": "attribution,recall"},
                                        "analyses.attribution.max_new_tokens=32"),
                              "datasets.pararel={relations: [P17, P36], max_facts: 3}"))
    assert py.numbers() == yml.numbers() == flags.numbers()
    assert list(yml.analyses) == ["attribution", "attention_knockout", "extraction_rate",
                                  "subject_enrichment"]
    assert yml.analyses["attribution"].max_new_tokens == 32
    assert yml.analyses["attribution"].L == 10               # every other field: its default
    assert list(yml.datasets) == ["instructions", "pararel"]  # only the kinds used
    assert yml.datasets["pararel"] == {"source": "builtin", "relations": ["P17", "P36"],
                                       "max_facts": 3, "sample": "random"}
    assert [(m.key, m.role, m.dtype) for m in yml.models] == [
        (BASE, "base", "float32"), (TUNED, "tuned", "float32")]


def test_groups_and_configs():
    spec = resolve({"base": BASE, "analyses": {"recall": {"max_examples": 5},
                                               "extraction_rate": {"batch_size": 2}}})
    assert [spec.analyses[a].max_examples for a in GROUPS["recall"]] == [5, 5, 5]
    assert spec.analyses["extraction_rate"].batch_size == 2
    assert spec.analyses["attention_knockout"].batch_size is None      # the engine default
    everything = resolve({"base": BASE})                      # no analyses: every group
    assert list(everything.analyses) == [a for g in GROUPS.values() for a in g]
    listed = resolve({"base": BASE, "analyses": ["heads", "next_token_predictions"]})
    assert list(listed.analyses) == ["attention_heads", "next_token_predictions"]
    tuples = resolve({"base": BASE, "analyses": {"ffn_concepts": {"layers": [0, 2]}}})
    assert tuples.analyses["ffn_concepts"].layers == (0, 2)


def test_the_resolved_spec_reads_back_equal():
    spec = Study.default().spec
    again = resolve(yaml.safe_load(yaml.safe_dump(spec.to_dict())))
    assert again.to_dict() == spec.to_dict() and again.fingerprint() == spec.fingerprint()


def test_fingerprint_covers_numbers_not_where_or_how():
    spec = from_yaml(VALID)
    assert spec.with_run(out="/elsewhere", executor="ray").fingerprint() == spec.fingerprint()
    for change in ("seed: 0", "max_new_tokens: 32", "max_facts: 3", f"tuned: [{TUNED}]"):
        replacement = {"seed: 0": "seed: 1", "max_new_tokens: 32": "max_new_tokens: 33",
                       "max_facts: 3": "max_facts: 4",
                       f"tuned: [{TUNED}]": f"tuned: [{{spec: {TUNED}, dtype: bfloat16}}]"}
        other = from_yaml(VALID.replace(change, replacement[change]))
        assert other.fingerprint() != spec.fingerprint(), change
    assert spec.fingerprint({"pairs": "a"}) != spec.fingerprint({"pairs": "b"})
    assert differences(from_yaml(VALID.replace("seed: 0", "seed: 1")).numbers(),
                       spec.numbers()) == ["seed 1 -> 0"]
    d = differences(spec.numbers(), from_yaml(VALID.replace(
        f"tuned: [{TUNED}]", f"tuned: [{{spec: {TUNED}, dtype: bf16}}]")).numbers())
    assert d == [f'models.{TUNED}.dtype "float32" -> "bfloat16"']
    assert differences({"a": {"b": 1}}, {"a": {"c": 1}}) == ["a.b removed", "a.c added"]


def test_model_keys(tmp_path):
    assert default_key(BASE) == BASE
    assert default_key("meta-llama/Llama-2-7b-hf") == "meta-llama--Llama-2-7b-hf"
    (tmp_path / "my model").mkdir()
    (tmp_path / "weights.Q4.gguf").write_bytes(b"GGUF")
    assert default_key(str(tmp_path / "my model")) == "my-model"
    assert default_key(str(tmp_path / "my model") + "/") == "my-model"
    assert default_key(str(tmp_path / "weights.Q4.gguf")) == "weights.Q4"
    spec = resolve({"base": {"spec": BASE, "key": "b"}, "tuned": [
        "meta-llama/Llama-2-7b-chat-hf", {"spec": str(tmp_path / "my model"), "key": "m.1"}]})
    assert [m.key for m in spec.models] == ["b", "meta-llama--Llama-2-7b-chat-hf", "m.1"]


@pytest.mark.parametrize("text, message", [
    ("base: [1, 2", "study.yaml:1: malformed YAML: "),
    ("base: a\n\tx: 1\n", "study.yaml:2: malformed YAML: "),
    (f"base: {BASE}\nanalyses: [recall]\nanalyses: [heads]\n",
     "study.yaml:3: field 'analyses': key given twice"),
    (f"base: {BASE}\nanalyse: [recall]\n", "study.yaml:2: field 'analyse': unknown key "
     "'analyse' in the study; keys: " + ", ".join(TOP_KEYS)),
    ("tuned: [x]\n", "study.yaml:1: field 'base': missing: a study needs a base model"),
    (f"base: {BASE}\ntuned: [{BASE}]\n", f"study.yaml:2: field 'tuned[0]': duplicate model key "
     f"'{BASE}' (also the base); give one of them its own 'key'"),
    ("base: llama-99b\n", "study.yaml:1: field 'base': unknown model 'llama-99b'"),
    ("base: /no/such/model\n", "study.yaml:1: field 'base': no such file or directory"),
    (f"base: {BASE}\nanalyses: [recall, kowledge]\n",
     "study.yaml:2: field 'analyses.kowledge': unknown analysis 'kowledge'; valid: groups "
     "consistency, recall, attribution, heads, concepts; analyses attention_heads, "),
    (f"base: {BASE}\nanalyses:\n  attribution:\n    max_new_tokens: abc\n",
     "study.yaml:4: field 'analyses.attribution.max_new_tokens': expected an integer, got 'abc'"),
    (f"base: {BASE}\nanalyses:\n  recall: {{windw: 3}}\n",
     "study.yaml:3: field 'analyses.recall.windw': analysis 'attention_knockout' has no "
     "parameter 'windw'; parameters: max_examples, per_relation, window"),
    (f"base: {BASE}\nanalyses: [ffn_concepts]\ndatasets:\n  vocabulary: {{size: 0}}\n",
     "study.yaml:4: field 'datasets.vocabulary.size': must be a positive integer, got 0"),
    (f"base: {BASE}\ndatasets:\n  pararel: {{source: /no/dir}}\n",
     "study.yaml:3: field 'datasets.pararel.source': no such file or directory: /no/dir"),
    (f"base: {BASE}\ndatasets: {{paraphrases: x.csv}}\n", "field 'datasets.paraphrases': "
     "unknown key 'paraphrases' in datasets; keys: pararel, pairs, task, instructions"),
    (f"base: {BASE}\nseed: -1\n", "study.yaml:2: field 'seed': must be an integer in 0..2^32-1"),
    (f"base: {BASE}\nexecutor: spark\n", "study.yaml:2: field 'executor': unknown executor"),
    (f"base: {{spec: {BASE}, dtype: int8}}\n", "field 'base.dtype': unknown dtype 'int8'"),
    ("- base\n", "study.yaml:1: a study must be a mapping, got ['base']"),
    ("base: !!python/object/apply:os.system [ls]\n", "study.yaml:1: malformed YAML: "),
])
def test_errors_name_file_line_and_field(text, message):
    got = error_of(text)
    assert got.startswith(message) or message in got, got
    assert "\n" not in got


def test_flag_errors_name_the_field():
    with pytest.raises(TunescopeError, match="^study analyses.nope: unknown analysis 'nope'"):
        resolve({"base": BASE, "analyses": "consistency,nope"})
    with pytest.raises(TunescopeError, match="--set expects PATH=VALUE"):
        set_value({}, "seed")


def test_dataset_limits_take_groups_in_turn(tmp_path):
    assert in_turn(list("aabbbc"), str, 4) == list("aabc")       # a, b, c, then the second a
    assert in_turn([1, 2, 3], str, None) == [1, 2, 3]
    first = {"sample": "first"}
    pairs = build("pairs", {"source": "builtin", "max_pairs": 12, **first})
    assert sum(p.label for p in pairs) == 6
    assert {p.source for p in pairs} == {"written", "factual", "pararel"}
    for source in ("written", "factual", "pararel"):    # each group's first items, in order
        for label in (0, 1):
            group = [p for p in study_pairs() if (p.source, p.label) == (source, label)]
            mine = [p for p in pairs if (p.source, p.label) == (source, label)]
            assert mine == group[:2]
    assert study_pairs()[:len(builtin_pairs())] == builtin_pairs()
    task = build("task", {"source": "builtin", "max_examples": 7, **first})
    assert task.examples == builtin_task().examples[:7] and task.labels == builtin_task().labels
    prompts = build("instructions", {"source": "builtin", "max_prompts": 6, **first})
    assert [p.category for p in prompts] == ["writing", "math", "coding", "translation",
                                             "classification", "qa"]
    assert prompts[1] == next(p for p in builtin_instructions() if p.category == "math")
    relations = build("pararel", {"source": "builtin", "relations": ["P36"], "max_facts": 2})
    assert [r.id for r in relations] == ["P36"] and len(relations[0].facts) == 2
    words = tmp_path / "words.tsv"
    words.write_text("word\tcount\nthe\t10\nof\t8\nand\t9\n")
    assert build("vocabulary", {"source": str(words), "size": 2}) == ["the", "and"]
    lines = tmp_path / "prompts.txt"
    lines.write_text("The capital of Peru is\n\nWater boils at\n")
    assert build("prompts", {"source": str(lines), "max_prompts": None}) == [
        "The capital of Peru is", "Water boils at"]
    assert len(build("vocabulary", {"source": "wordfreq", "size": 30})) == 30


def test_dataset_samples_are_seeded_and_cover_every_source_and_label():
    """The default sample draws with the study seed from every (source, label) group in turn:
    a small pair sample is not one kind of pair taken in file order."""
    from collections import Counter
    entry = {"source": "builtin", "max_pairs": 40}
    pairs = build("pairs", entry, seed=0)
    everything = study_pairs()
    groups = Counter((p.source, p.label) for p in everything)
    assert len(groups) == 6
    got = Counter((p.source, p.label) for p in pairs)
    assert set(got) == set(groups) and max(got.values()) - min(got.values()) <= 1
    assert pairs == build("pairs", entry, seed=0) != build("pairs", entry, seed=1)
    assert pairs != in_turn(everything, lambda p: (p.source, p.label), 40)   # not file order
    index = [everything.index(p) for p in pairs]
    assert index == sorted(index)                                           # kept in file order
    relations = build("pararel", {"source": "builtin", "relations": ["P36"], "max_facts": 4,
                                  "sample": "random"}, seed=3)
    assert relations[0].sampling.endswith("(seed 3)")
    assert relations == build("pararel", {"source": "builtin", "relations": ["P36"],
                                          "max_facts": 4, "sample": "random"}, seed=3)


# --- malformed documents: always a TunescopeError, nothing written ------------------------------

WRONG = {
    ("base",): [3, [1], {}, {"key": "x"}, "no-such-model-xyz", "/no/such/path", True],
    ("tuned",): [3, True, [1], [{"key": "x"}], [BASE], {"spec": BASE}],
    ("analyses",): [3, "nonsense-xyz", [1], {}, {"unknown": {}}, [None], 2.5],
    ("analyses", "attribution"): [5, "x", [1], {"bogus": 1}, {"max_new_tokens": "abc"},
                                  {"max_new_tokens": 1.5}, {"chat": "yes"}, {"L": None}],
    ("datasets",): [3, "x", {"unknownkind": {}}, {"pararel": {"bogus": 1}},
                    {"pararel": {"max_facts": 0}}, {"pararel": {"relations": []}},
                    {"pararel": {"sample": "top"}}, {"pararel": {"sample": 1}},
                    {"pararel": {"source": "/no/such/dir"}}, {"pararel": 5},
                    {"instructions": {"max_prompts": -2}}, {"pararel": {"relations": [3]}}],
    ("seed",): [-1, "x", 1.5, True, 2 ** 40, [0]],
    ("executor",): ["spark", 3, ["local"]],
    ("address",): [3, ""],
    ("out",): [3, ["a"]],
    ("dtype",): ["int8", 3],
    ("num_gpus",): [-1, "one"],
}
BREAKERS = ["\t- x", ": :", "[", "{", "key: [unclosed", "  - ] x", "*undefined", "%YAML 9.9",
            "!!python/object:os.system x: 1", "? [a]\n: b", "&a [*a]", "--- \n---", "\"open",
            "1: x", "null: x", "<<: 5"]


NEVER = Path(tempfile.gettempdir()) / f"tunescope-never-written-{os.getpid()}"
"""The run directory of every generated document: parsing must not create it."""


def _set(doc, path, value):
    doc = yaml.safe_load(yaml.safe_dump(doc))
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


@st.composite
def malformed(draw):
    doc = {**yaml.safe_load(VALID), "out": str(NEVER)}
    how = draw(st.sampled_from(["wrong", "unknown", "drop_base", "break", "text"]))
    if how == "wrong":
        path = draw(st.sampled_from(sorted(WRONG)))
        return yaml.safe_dump(_set(doc, path, draw(st.sampled_from(WRONG[path]))))
    if how == "unknown":
        key = "x_" + draw(st.text(string.ascii_lowercase + "_", max_size=12))  # no such field
        where = draw(st.sampled_from([(), ("analyses", "attribution"), ("datasets", "pararel")]))
        node = doc
        for part in where:
            node = node[part]
        node[key] = draw(st.integers(0, 5))
        return yaml.safe_dump(doc)
    if how == "drop_base":
        del doc["base"]
        return yaml.safe_dump(doc)
    if how == "break":
        lines = VALID.splitlines()
        at = draw(st.integers(0, len(lines)))
        lines.insert(at, draw(st.sampled_from(BREAKERS)))
        return "\n".join(lines)
    return draw(st.text(max_size=80))


@settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.filter_too_much])
@given(text=malformed())
def test_malformed_documents_give_a_tunescope_error_and_write_nothing(text):
    try:
        from_yaml(text, "study.yaml")
    except TunescopeError as e:
        assert "\n" not in str(e) and str(e)
    else:
        pytest.fail(f"accepted a malformed study:\n{text}")
    assert not NEVER.exists()


def test_python_tags_are_refused():
    assert error_of("base: !!python/object/apply:os.system [echo hi]\n") == (
        "study.yaml:1: malformed YAML: tag 'tag:yaml.org,2002:python/object/apply:os.system' "
        "is not allowed in a study")
    assert "could not determine a constructor" in error_of("base: !!python/name:os.system\n")


def test_summary_headlines():
    from tunescope.study.summary import headline
    assert headline("prediction_consistency", {"mode": "candidates", "macro_accuracy": 0.25,
                                               "macro_consistency": 0.5}) == [
        ("consistency", 0.5), ("accuracy", 0.25)]
    assert headline("someone_elses", {"name": "x", "ok": True, "n": 3, "mean": 0.5, "z": 1}) \
        == [("n", 3), ("mean", 0.5)]


def test_trust_remote_code_is_off_unless_the_study_asks(monkeypatch):
    from tunescope.study import jobs

    raw = {"base": "gemma-3-270m", "tuned": ["smollm2-135m-instruct"],
           "analyses": ["next_token_predictions"]}
    assert [m.trust_remote_code for m in resolve(raw).models] == [False, False]
    assert [m.trust_remote_code for m in resolve({**raw, "trust_remote_code": True}).models] == [
        True, True]
    one = resolve({**raw, "base": {"spec": "gemma-3-270m", "trust_remote_code": True}})
    assert [m.trust_remote_code for m in one.models] == [True, False]
    with pytest.raises(TunescopeError, match=r"trust_remote_code: must be true or false, got 'yes'"):
        resolve({**raw, "trust_remote_code": "yes"})
    seen = []
    monkeypatch.setattr(loading, "load", lambda spec, **kw: seen.append(kw["trust_remote_code"]))
    jobs.load_model(one, "gemma-3-270m")
    jobs.load_model(one, "smollm2-135m-instruct")
    assert seen == [True, False]


def test_prompt_file_lines_end_at_newlines_only(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("The capital of\u2028France is\r\n\nParis is\n")
    assert build("prompts", {"source": str(path), "max_prompts": None}) == [
        "The capital of\u2028France is", "Paris is"]
