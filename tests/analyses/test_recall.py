"""C4 recall mechanics: example selection, attention knockout, extraction rate, enrichment."""

import numpy as np
import pytest
import torch
from tiny import fact_relations, tiny_lm, tiny_trained_lm

from tunescope.analyses import (
    attention_knockout,
    extraction_rate,
    get,
    subject_enrichment,
)
from tunescope.analyses.helpers.recall_examples import select_examples, subject_span
from tunescope.analyses.recall import (
    BLOCK_SETS,
    ExtractionConfig,
    RecallConfig,
    _target_probs,
    knockout_effects,
    knockout_keys,
    mean_ci,
    special_ids,
    window_layers,
)
from tunescope.errors import TunescopeError
from tunescope.result import Result


@pytest.fixture(scope="module", params=["llama", "gemma3"])
def knowing(request):
    """A tiny model trained on six capitals, and the examples it answers correctly."""
    lm = tiny_trained_lm(request.param)
    examples, _ = select_examples(lm, fact_relations())
    assert len(examples) >= 6
    return lm, examples[:6]


def test_subject_span_from_offsets():
    # "The capital of France is": tokens The| capital| of| France| is ; " France" = (14, 21)
    offsets = [(0, 0), (0, 3), (3, 11), (11, 14), (14, 21), (21, 24)]
    assert subject_span(offsets, 15, 21) == (4, 4)      # leading space merged into the token
    assert subject_span(offsets, 4, 14) == (2, 3)        # two tokens
    assert subject_span(offsets, 30, 35) is None
    assert subject_span([(0, 0), (0, 0)], 0, 3) is None  # special tokens never match


def test_selection_statuses_and_spans(knowing):
    lm, examples = knowing
    for e in examples:
        piece = lm.tokenizer.decode(list(e.input_ids[e.subject[0]:e.subject[1] + 1])).strip()
        assert piece == e.subject_text
        assert lm.tokenizer.decode([e.target]).strip() == lm.tokenizer.decode(
            lm.tokenizer(" " + e.object, add_special_tokens=False)["input_ids"][:1]).strip()
        assert 0 < e.probability <= 1


def test_selection_skips_with_reasons():
    lm = tiny_lm("llama")
    from tunescope.data.types import Fact, Relation, Template
    rel = Relation("P1", (Template("P1", "The capital of [X] is [Y]."), Template("P1", "Capital: [X] [Y]")),
                   (Fact("P1", "France", "Paris"),))
    _, queried = select_examples(lm, [rel])
    assert queried["status"].tolist() == ["wrong", "subject ends the prompt"]


def test_window_and_keys():
    assert list(window_layers(0, 9, 18)) == list(range(0, 5))
    assert list(window_layers(10, 9, 18)) == list(range(6, 15))
    assert list(window_layers(17, 9, 18)) == list(range(13, 18))
    assert list(window_layers(1, 1, 4)) == [1]
    from tunescope.analyses.helpers.recall_examples import RecallExample
    e = RecallExample("P", "s", "o", "t", "p", tuple(range(8)), (3, 4), 0, 0.5)
    assert knockout_keys(e, "subject") == [3, 4]
    assert knockout_keys(e, "non_subject") == [0, 1, 2, 5, 6]          # a word at position 0
    assert knockout_keys(e, "non_subject", {0}) == [1, 2, 5, 6]         # a special token there
    assert knockout_keys(e, "non_subject", {5}) == [0, 1, 2, 5, 6]      # only position 0 is left out
    assert knockout_keys(e, "last") == [7]
    at_start = RecallExample("P", "s", "o", "t", "p", tuple(range(5)), (0, 1), 0, 0.5)
    assert knockout_keys(at_start, "non_subject") == [2, 3]


def test_special_ids_are_bos_and_all_special():
    from tiny import tiny_tokenizer
    with_bos, without = tiny_tokenizer(), tiny_tokenizer(bos=False)
    assert special_ids(with_bos) == {0, 1, 2} == special_ids(without)   # <pad> <bos> <eos>
    assert with_bos("The capital")["input_ids"][0] == 1
    assert without("The capital")["input_ids"][0] not in special_ids(without)


@pytest.mark.parametrize("bos", [True, False])
def test_knockout_leaves_out_position_0_only_for_a_special_token(bos):
    from tiny import tiny_tokenizer

    from tunescope.models.lm import LM
    trained = tiny_trained_lm("llama")
    lm = LM.from_hf(trained.model, tiny_tokenizer(bos=bos), name="tiny", source="memory")
    res = attention_knockout(lm, fact_relations(), get("attention_knockout").make_config(
        max_examples=3, window=2 * lm.anatomy.n_layers + 1))
    examples, _ = select_examples(lm, fact_relations(), max_examples=3)
    assert (examples[0].input_ids[0] == lm.tokenizer.bos_token_id) == bos
    special = special_ids(lm.tokenizer)
    for block in ("subject", "non_subject", "last"):
        rows = [(e, 0, block) for e in range(3)]
        want = _target_probs(lm, examples, rows, 2 * lm.anatomy.n_layers + 1,
                             lambda example, b: knockout_keys(example, b, special))
        per = res.tables["per_example"]
        got = per[(per.layer == 0) & (per.block == block)]["probability"].to_numpy()
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_mean_ci():
    mean, low, high = mean_ci(np.array([1.0, 2.0, 3.0]))
    assert mean == 2.0
    assert high - mean == pytest.approx(4.302652729911275 * 1.0 / np.sqrt(3))  # t(0.975, 2) sd/sqrt(n)
    assert mean - low == pytest.approx(high - mean)


def test_empty_knockout_changes_nothing_exactly(knowing):
    lm, examples = knowing
    rows = [(e, None, None) for e in range(len(examples))]
    clean = _target_probs(lm, examples, rows, 9, knockout_keys)
    nothing = _target_probs(lm, examples, [(e, 0, "subject") for e in range(len(examples))], 9,
                            lambda example, block: [])
    assert np.array_equal(clean, nothing)
    expected = [e.probability for e in examples]
    np.testing.assert_allclose(clean, expected, atol=1e-6)


def _reference_prob(lm, example, keys):
    """The same edges masked in every layer through an explicit 4D attention mask."""
    T = len(example.input_ids)
    allowed = torch.tril(torch.ones(T, T, dtype=torch.bool))
    allowed[T - 1, keys] = False
    mask = torch.zeros(1, 1, T, T).masked_fill(~allowed, torch.finfo(torch.float32).min)
    with torch.no_grad():
        logits = lm.model(torch.tensor([example.input_ids]), attention_mask=mask).logits[0, -1]
    return float(torch.softmax(logits, -1)[example.target])


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_hook_knockout_equals_explicit_4d_mask(knowing, attn):
    lm, examples = knowing
    lm.model.config._attn_implementation = attn
    # One 4D mask serves every layer, so the reference cannot express Gemma's per-layer sliding
    # window: widen the window (for both runs) to compare the knockout itself.
    window = getattr(lm.model.config, "sliding_window", None)
    if window:
        lm.model.config.sliding_window = 4096
    try:
        everywhere = 2 * lm.anatomy.n_layers + 1  # a window that covers every layer
        for block in BLOCK_SETS:
            rows = [(e, 0, block) for e in range(len(examples))]
            got = _target_probs(lm, examples, rows, everywhere, knockout_keys)
            ref = [_reference_prob(lm, examples[e], knockout_keys(examples[e], block))
                   for e in range(len(examples))]
            np.testing.assert_allclose(got, ref, atol=1e-5)
    finally:
        lm.model.config._attn_implementation = "sdpa"
        if window:
            lm.model.config.sliding_window = window


def test_knockout_batched_equals_one_row_per_pass(knowing):
    lm, examples = knowing
    batched = knockout_effects(lm, examples[:3], window=3, rows_per_pass=128)
    single = knockout_effects(lm, examples[:3], window=3, rows_per_pass=1)
    np.testing.assert_allclose(batched["relative_change"], single["relative_change"], atol=1e-3)
    np.testing.assert_allclose(batched["probability"], single["probability"], atol=1e-5)
    assert len(batched) == 3 * lm.anatomy.n_layers * 3
    assert batched["relative_change"].abs().max() > 0.1  # knocking out edges does something


def test_attention_knockout_result(tmp_path):
    lm = tiny_trained_lm("llama")
    cfg = get("attention_knockout").make_config(max_examples=4, window=3)
    res = attention_knockout(lm, fact_relations(), cfg)
    curves = res.tables["curves"]
    assert set(curves["block"]) == set(BLOCK_SETS) and len(curves) == 3 * lm.anatomy.n_layers
    assert (curves["n"] == 4).all() and (curves["ci_low"] <= curves["mean"]).all()
    per = res.tables["per_example"]
    manual = per[(per.layer == 1) & (per.block == "subject")]["relative_change"].mean()
    assert curves[(curves.layer == 1) & (curves.block == "subject")]["mean"].item() == pytest.approx(manual)
    assert res.summary["n_examples"] == 4
    assert Result.load(res.save(tmp_path / "k")) == res


def test_extraction_rate_invariant_and_batch_sizes(knowing):
    lm, _ = knowing
    cfg = get("extraction_rate")
    # the last block's output through the final norm is the model's own prediction; without
    # the norm (the default projection) it need not be
    a = extraction_rate(lm, fact_relations(), cfg.make_config(batch_size=16, projection="final_norm"))
    b = extraction_rate(lm, fact_relations(), cfg.make_config(batch_size=1, projection="final_norm"))
    rates = a.tables["rates"]
    last = rates[(rates.component == "resid_post") & (rates.layer == lm.anatomy.n_layers - 1)]
    assert last["rate"].item() == 1.0
    assert a.tables["per_example"]["top1"].tolist() == b.tables["per_example"]["top1"].tolist()
    assert set(rates["component"]) == {"attn_out", "mlp_out", "resid_post"}


def test_subject_enrichment_matches_logit_lens(knowing):
    lm, examples = knowing
    res = subject_enrichment(lm, fact_relations(), get("subject_enrichment").make_config(batch_size=4))
    per = res.tables["per_example"]
    last_layer = per[(per.layer == lm.anatomy.n_layers - 1) & (per.position == "last_token")]
    assert (last_layer["rank"] == 1).all()  # the model's own prediction is the target
    e = examples[0]
    ids = torch.tensor([e.input_ids])
    from tunescope.models.hooks import trace
    with torch.no_grad(), trace(lm, points=("resid_post",), layers=[0]) as rec:
        lm.model(ids)
    logits = lm.anatomy.logits(rec["resid_post"][0][0, e.subject[1]])
    rank = int((logits > logits[e.target]).sum()) + 1
    row = per[(per.example == 0) & (per.layer == 0) & (per.position == "last_subject_token")]
    assert row["rank"].item() == rank
    other = subject_enrichment(lm, fact_relations(), get("subject_enrichment").make_config(batch_size=1))
    np.testing.assert_allclose(other.tables["per_example"]["probability"], per["probability"], atol=1e-6)


def test_no_correct_queries_is_a_clear_error():
    with pytest.raises(TunescopeError, match="answers none of the"):
        attention_knockout(tiny_lm("gpt2"), fact_relations())


def test_extraction_projection_config_summary_and_provenance():
    lm = tiny_trained_lm("llama")
    analysis = get("extraction_rate")
    assert analysis.config is ExtractionConfig
    assert analysis.make_config().projection == "unembedding"
    with pytest.raises(TunescopeError, match="unknown projection 'logit_lens'.*'unembedding', 'final_norm'"):
        analysis.make_config(projection="logit_lens")
    runs = {p: extraction_rate(lm, fact_relations(), analysis.make_config(max_examples=4, projection=p))
            for p in ("unembedding", "final_norm")}
    for p, res in runs.items():
        assert res.summary["projection"] == p
        assert res.provenance["config"]["projection"] == p
    # a plain RecallConfig (shared with the other C4 analyses) gets the default projection
    plain = extraction_rate(lm, fact_relations(), RecallConfig(max_examples=4))
    assert plain.summary["projection"] == "unembedding"
    assert plain.provenance["config"]["projection"] == "unembedding"
    assert plain.tables["per_example"]["top1"].tolist() == runs["unembedding"].tables["per_example"]["top1"].tolist()
    # the knockout and enrichment configs do not carry a projection
    assert "projection" not in {f for f in get("subject_enrichment").make_config().__dataclass_fields__}


def _extraction_pair(projections):
    lm = tiny_trained_lm("llama")
    cfg = get("extraction_rate")
    return [extraction_rate(lm, fact_relations(), cfg.make_config(max_examples=4, projection=p))
            for p in projections]


def test_compare_notes_a_projection_mismatch():
    from tunescope.compare import compare_results
    same = compare_results(*_extraction_pair(["unembedding", "unembedding"]), n_boot=20)
    assert not same["note"].str.contains("projection").any()
    base, tuned = _extraction_pair(["final_norm", "unembedding"])
    notes = compare_results(base, tuned, n_boot=20)["note"]
    assert len(notes) and notes.str.contains(
        "different projections: base 'final_norm' vs tuned 'unembedding'").all()
    # a Result recorded before the choice existed used the final norm
    legacy = Result(base.analysis, base.tables, {k: v for k, v in base.summary.items() if k != "projection"},
                    {**base.provenance, "config": {k: v for k, v in base.provenance["config"].items()
                                                   if k != "projection"}})
    notes = compare_results(legacy, tuned, n_boot=20)["note"]
    assert notes.str.contains("different projections: base 'final_norm' vs tuned 'unembedding'").all()


def test_report_caption_names_the_projection():
    import pandas as pd

    from tunescope.report.sections.base import Context
    from tunescope.report.sections.recall import extraction_rate as section
    base, tuned = _extraction_pair(["unembedding", "unembedding"])
    ctx = Context("extraction_rate", {"base": base, "tuned": tuned}, [], pd.DataFrame(),
                  {"base": "#000000", "tuned": "#ff0000"})
    html = "".join(section(ctx))
    assert "with the unembedding alone" in html and "final norm and the unembedding" not in html
    ctx.results["tuned"] = _extraction_pair(["final_norm"])[0]
    html = "".join(section(ctx))
    assert "differently per model" in html and "tuned: through the final norm" in html
