"""C1 prediction consistency: metrics against hand-computed cases, predictions against the engine."""

import numpy as np
import pandas as pd
import pytest

from tiny import tiny_lm
from tunescope.analyses import get, prediction_consistency
from tunescope.analyses.consistency_metrics import macro, per_relation
from tunescope.analyses.prediction_consistency import article_fits, first_word, queries
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


def test_first_word():
    assert first_word(" Paris, the capital") == "paris"
    assert first_word("\n\nNew Delhi.") == "new"
    assert first_word("...") == ""


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
    pd.testing.assert_frame_equal(res.tables["per_relation"], expected)
    assert res.summary["macro_accuracy"] == pytest.approx(expected["accuracy"].mean())
    assert res.summary["prompt_format"] == "raw" and res.summary["mode"] == "candidates"


def test_mean_score_greedy_and_chat_modes(tmp_path):
    lm = tiny_lm("llama", chat=True)
    mean = prediction_consistency(lm, RELATIONS, get("prediction_consistency").make_config(score="mean"))
    assert set(mean.tables["predictions"]["gold_rank"]) <= {1, 2, 3}
    greedy = prediction_consistency(lm, RELATIONS, get("prediction_consistency").make_config(
        mode="greedy", max_new_tokens=3, chat=True))
    g = greedy.tables["predictions"]
    assert g["prediction"].tolist() == [first_word(t) for t in g["generated"]]
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
