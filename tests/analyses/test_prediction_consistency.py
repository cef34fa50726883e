"""C1 prediction consistency: metrics against hand-computed cases, predictions against the engine."""

import numpy as np
import pandas as pd
import pytest
from tiny import tiny_lm

from tunescope.analyses import get, prediction_consistency
from tunescope.analyses.helpers.consistency_metrics import macro, per_relation
from tunescope.analyses.prediction_consistency import (
    article_fits,
    greedy_answer,
    queries,
)
from tunescope.data.types import Fact, Relation, Template
from tunescope.engine import score_continuations
from tunescope.errors import TunescopeError
from tunescope.result import Result


def _rows(relation, subject, gold, predictions):
    return [{"relation": relation, "subject": subject, "template": f"t{i}", "prediction": p,
             "correct": p == gold} for i, p in enumerate(predictions)]


def test_metrics_hand_computed():
    """One relation, three templates:
    s1 A A A (gold A): consistent and correct; s2 B B C (gold B): 1 of 3 pairs agree;
    s3 D D D (gold E): consistent, wrong; s4 has a single template: counts for accuracy only."""
    table = pd.DataFrame(_rows("R", "s1", "A", "AAA") + _rows("R", "s2", "B", "BBC")
                         + _rows("R", "s3", "E", "DDD") + _rows("R", "s4", "F", "F"))
    m = per_relation(table).iloc[0]
    assert m["accuracy"] == pytest.approx(6 / 10)          # 3 + 2 + 0 + 1 correct of 10
    assert m["consistency"] == pytest.approx(7 / 9)        # 3 + 1 + 3 agreeing of 9 pairs
    assert m["consistent_subjects"] == pytest.approx(2 / 3)
    assert m["consistent_and_correct"] == pytest.approx(1 / 3)
    assert (m["n_queries"], m["n_subjects"], m["n_template_pairs"]) == (10, 4, 9)


def test_macro_averages_relations():
    table = pd.DataFrame(_rows("R1", "s", "A", "AA") + _rows("R2", "s", "A", "AB"))
    rel = per_relation(table)
    assert rel["consistency"].tolist() == [1.0, 0.0]
    assert rel["accuracy"].tolist() == [1.0, 0.5]
    assert macro(rel) == {"accuracy": 0.75, "consistency": 0.5, "consistent_subjects": 0.5,
                          "consistent_and_correct": 0.5}


def test_article_filter_and_queries():
    an = Template("P1", "[X] is an [Y].")
    a = Template("P1", "[X] is a [Y].")
    plain = Template("P1", "[X] plays the [Y].")
    not_last = Template("P1", "[Y] is played by [X].")
    assert article_fits(an, "oboe") and not article_fits(an, "piano")
    assert article_fits(a, "piano") and not article_fits(a, "oboe")
    rel = Relation("P1", (an, a, plain, not_last), (Fact("P1", "Ann", "oboe"), Fact("P1", "Bo", "piano")))
    q = queries([rel])
    assert q["prompt"].tolist() == ["Ann is an", "Ann plays the", "Bo is a", "Bo plays the"]
    assert len(queries([rel], article_filter=False)) == 6


def test_greedy_answer_compares_the_whole_object():
    assert greedy_answer(" Paris, the capital", "Paris") == "paris"
    assert greedy_answer(" New York is a city", "New Delhi") == "new york"   # not "new" == "new"
    assert greedy_answer("\n\nNew Delhi.", "New Delhi") == "new delhi"
    assert greedy_answer(" Rio de Janeiro, Brazil", "Rio de Janeiro") == "rio de janeiro"
    assert greedy_answer(" Ｐａｒｉｓ", "Paris") == "paris"                    # NFKC
    assert greedy_answer("...", "Paris") == ""


def test_facts_that_share_a_subject_are_two_units():
    """Two facts of one subject (a country with two official languages): the prompts are the
    same, so the model gives the same answers to both; template 1 says A, template 2 says B.
    Per fact the one template pair disagrees: consistency 0 (grouping by subject would pool the
    identical prompts and count 2 of 6 pairs as agreeing)."""
    rows = []
    for fact, gold in ((0, "A"), (1, "B")):
        rows += [{"relation": "R", "fact": fact, "subject": "X", "template": t, "prediction": p,
                  "correct": p == gold} for t, p in (("t1", "A"), ("t2", "B"))]
    m = per_relation(pd.DataFrame(rows)).iloc[0]
    assert m["consistency"] == 0.0 and m["consistent_subjects"] == 0.0
    assert (m["n_facts"], m["n_subjects"], m["n_template_pairs"]) == (2, 1, 2)
    assert m["accuracy"] == 0.5


RELATIONS = [
    Relation("P36", (Template("P36", "The capital of [X] is [Y]."),
                     Template("P36", "[X]'s capital is [Y]."),
                     Template("P36", "The capital city of [X] is [Y].")),
             (Fact("P36", "France", "Paris"), Fact("P36", "Italy", "Rome"),
              Fact("P36", "Germany", "Berlin"))),
    Relation("P37", (Template("P37", "The official language of [X] is [Y]."),
                     Template("P37", "In [X], people speak [Y].")),
             (Fact("P37", "Spain", "Spanish"), Fact("P37", "France", "French"))),
]


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_candidate_predictions_are_the_engine_argmax(family):
    lm = tiny_lm(family)
    res = prediction_consistency(lm, RELATIONS)
    pred = res.tables["predictions"]
    assert len(pred) == 3 * 3 + 2 * 2
    for _, row in pred.iterrows():
        rel = next(r for r in RELATIONS if r.id == row["relation"])
        s = score_continuations(lm, [row["prompt"]], [list(rel.objects)])[0]
        assert row["prediction"] == rel.objects[int(np.argmax(s.sum_logprob))]
        assert row["gold_score"] == pytest.approx(s.sum_logprob[rel.objects.index(row["object"])], abs=1e-5)
    # the per-relation table is the metric code applied to the predictions
    expected = per_relation(pred)
    table = res.tables["per_relation"]
    pd.testing.assert_frame_equal(table[expected.columns], expected)
    assert table["n_candidates"].tolist() == [3, 2] and not table["degenerate"].any()
    assert res.summary["macro_accuracy"] == pytest.approx(expected["accuracy"].mean())
    assert res.summary["prompt_format"] == "raw" and res.summary["mode"] == "candidates"
    # both relations have few candidates: flagged, with their chance accuracy
    assert [f.split(":")[0] for f in res.summary["flags"]] == ["C1 P36", "C1 P37"]
    assert "chance accuracy 0.50" in res.summary["flags"][1]


def _reference_sum_logprob(lm, prompt, candidate):
    """log p(candidate | prompt) from one plain forward pass over prompt + " " + candidate."""
    import torch
    prompt_ids = lm.tokenizer(prompt)["input_ids"]
    ids = lm.tokenizer(prompt + " " + candidate)["input_ids"]
    with torch.no_grad():
        lp = torch.log_softmax(lm.model(torch.tensor([ids])).logits[0], -1)
    return sum(float(lp[t - 1, ids[t]]) for t in range(len(prompt_ids), len(ids)))


def test_a_sample_of_facts_ranks_the_relations_full_object_set():
    """max_facts=3 asks 3 facts but ranks every object of the relation's fact file (read here
    with json alone); the prediction is the argmax of the plain-forward scores over all of
    them."""
    import json

    from tunescope.data import pararel
    from tunescope.data.pararel import builtin_pararel_path
    lines = (builtin_pararel_path() / "tuples" / "P36.jsonl").read_text().splitlines()
    objects = list(dict.fromkeys(json.loads(x)["obj_label"] for x in lines if x.strip()))
    relations = pararel(["P36"], max_facts=3, seed=5)
    assert len(relations[0].facts) == 3 and list(relations[0].objects) == objects
    lm = tiny_lm("llama")
    res = prediction_consistency(lm, relations)
    pred = res.tables["predictions"]
    assert set(pred["n_candidates"]) == {len(objects)} and len(objects) > 30
    assert res.tables["per_relation"]["n_candidates"].tolist() == [len(objects)]
    assert "flags" not in res.summary
    assert res.provenance["dataset"]["sampling"] == {"P36": f"random 3 of {len(objects)} (seed 5)"}
    for row in pred.head(4).itertuples():
        ref = [_reference_sum_logprob(lm, row.prompt, o) for o in objects]
        assert row.prediction == objects[int(np.argmax(ref))]
        assert row.gold_rank == 1 + sum(r > ref[objects.index(row.object)] + 1e-6 for r in ref)


def test_a_relation_with_one_candidate_is_flagged_and_left_out_of_the_macro():
    lm = tiny_lm("llama")
    one = Relation("P30", (Template("P30", "[X] is located in [Y]."),
                           Template("P30", "[X] lies in [Y].")),
                   (Fact("P30", "France", "Europe"), Fact("P30", "Italy", "Europe")))
    res = prediction_consistency(lm, [one, RELATIONS[0]])
    table = res.tables["per_relation"].set_index("relation")
    assert table.loc["P30", "degenerate"] and table.loc["P30", "accuracy"] == 1.0
    assert res.summary["macro_accuracy"] == pytest.approx(table.loc["P36", "accuracy"])
    assert res.summary["n_relations"] == 1
    assert "one candidate object" in res.summary["flags"][0]


def test_mean_score_greedy_and_chat_modes(tmp_path):
    lm = tiny_lm("llama", chat=True)
    mean = prediction_consistency(lm, RELATIONS, get("prediction_consistency").make_config(score="mean"))
    assert set(mean.tables["predictions"]["gold_rank"]) <= {1, 2, 3}
    greedy = prediction_consistency(lm, RELATIONS, get("prediction_consistency").make_config(
        mode="greedy", max_new_tokens=3, chat=True))
    g = greedy.tables["predictions"]
    for _, row in g.iterrows():           # reference: the gold object's word count, whole
        k = len(row["object"].split())
        words = "".join(c if c.isalnum() else " " for c in row["generated"].lower()).split()
        assert row["prediction"] == " ".join(words[:k])
        assert row["correct"] == (row["prediction"] == row["object"].lower())
    assert greedy.summary["prompt_format"] == "chat"
    assert greedy.provenance["config"]["chat"] is True
    assert Result.load(greedy.save(tmp_path / "g")) == greedy


def test_errors():
    lm = tiny_lm("gpt2")
    cfg = get("prediction_consistency")
    with pytest.raises(TunescopeError, match="unknown mode"):
        prediction_consistency(lm, RELATIONS, cfg.make_config(mode="beam"))
    with pytest.raises(TunescopeError, match="no relations"):
        prediction_consistency(lm, [])
    only_middle = Relation("P9", (Template("P9", "[Y] is the capital of [X]."),),
                           (Fact("P9", "France", "Paris"),))
    with pytest.raises(TunescopeError, match="no queries"):
        prediction_consistency(lm, [only_middle])
