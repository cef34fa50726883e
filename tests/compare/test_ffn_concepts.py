"""W3 subspace rotation in a study: ffn_concepts keeps component vectors (keep_vectors), and
the base-vs-tuned comparison of a matched pair reports the principal angles between them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from tiny import tiny_lm

from tunescope.analyses import ffn_concepts, get
from tunescope.analyses.ffn_concepts import layer_components
from tunescope.compare import compare_results
from tunescope.compare.ffn_concepts import angle_rows
from tunescope.result import Result


def result_with(vectors: dict[int, np.ndarray], n_layers: int) -> Result:
    rows = [{"layer": layer, "component": c, "vector": v.astype(np.float32)}
            for layer, vs in vectors.items() for c, v in enumerate(vs)]
    return Result("ffn_concepts", {"vectors": pd.DataFrame(rows)}, {"n_layers": n_layers}, {})


def test_angles_of_known_rotations():
    """Layer 0: the same plane (angles 0, 0). Layer 1: span{e1, e2} against
    span{cos t e1 + sin t e3, e2} (angles 0 and t). Layer 2: orthogonal planes (90, 90)."""
    t = math.radians(30)
    e = np.eye(4)
    base = {0: e[[0, 1]], 1: e[[0, 1]], 2: e[[0, 1]]}
    tuned = {0: np.stack([(e[0] + e[1]) / math.sqrt(2), (e[0] - e[1]) / math.sqrt(2)]),
             1: np.stack([math.cos(t) * e[0] + math.sin(t) * e[2], e[1]]),
             2: e[[2, 3]]}
    rows = {r["key"]: r for r in angle_rows(result_with(base, 3), result_with(tuned, 3))}
    assert rows["layer=0"]["tuned"] == pytest.approx(0.0, abs=1e-4)
    assert rows["layer=1"]["tuned"] == pytest.approx(15.0, abs=1e-4)       # mean of 0 and 30
    assert rows["layer=1"]["statistic"] == pytest.approx(30.0, abs=1e-4)
    assert rows["layer=2"]["tuned"] == pytest.approx(90.0, abs=1e-4)
    assert rows["layer=1"]["depth"] == pytest.approx(2 / 3)
    assert rows[""]["tuned"] == pytest.approx(35.0, abs=1e-4)              # (0 + 15 + 90) / 3
    assert all(r["base"] == 0.0 and r["difference"] == r["tuned"] for r in rows.values())


def test_depth_of_a_layer_subset_is_the_models_depth():
    """With layers 4 and 17 of an 18-block model analysed, the rows sit at (layer + 1) / 18,
    the model's depth from the provenance, not at a depth among the 2 analysed layers."""
    e = np.eye(4)
    def subset(vectors):
        r = result_with(vectors, 2)                       # summary: 2 analysed layers
        r.provenance["model"] = {"n_layers": 18}
        return r
    rows = {r["key"]: r for r in angle_rows(subset({4: e[[0]], 17: e[[1]]}),
                                            subset({4: e[[0]], 17: e[[1]]}))}
    assert rows["layer=4"]["depth"] == pytest.approx(5 / 18)
    assert rows["layer=17"]["depth"] == pytest.approx(1.0)


def test_no_angles_without_vectors_or_across_architectures():
    e = np.eye(4)
    assert angle_rows(result_with({0: e[[0]]}, 1),
                      Result("ffn_concepts", {}, {"n_layers": 1}, {})) == []
    assert angle_rows(result_with({0: e[[0]]}, 1), result_with({0: np.eye(5)[[0]]}, 1)) == []
    assert angle_rows(result_with({0: e[[0]]}, 2), result_with({0: e[[0]], 1: e[[1]]}, 2)) == []


def test_kept_vectors_are_the_components_and_survive_save_and_load(tmp_path):
    lm = tiny_lm("gemma3")
    words = ["cat", "dog", "sun", "sea", "red", "blue", "tree", "rain"]
    config = get("ffn_concepts").make_config(rank=4, top_words=3, runs=1, keep_vectors=3)
    result = ffn_concepts(lm, words, config)
    vectors = result.tables["vectors"]
    assert len(vectors) == 3 * lm.anatomy.n_layers
    for layer in range(lm.anatomy.n_layers):
        expected = layer_components(lm.anatomy.mlp_down_weight(layer))[0][:3].numpy()
        got = np.stack(vectors[vectors["layer"] == layer]["vector"].to_list())
        assert np.array_equal(got, expected)
    back = Result.load(result.save(tmp_path / "r"))
    assert np.array_equal(np.stack(back.tables["vectors"]["vector"].to_list()),
                          np.stack(vectors["vector"].to_list()))
    same = compare_results(result, back)
    angles = same[same["metric"] == "principal_angle"]
    assert len(angles) == lm.anatomy.n_layers + 1 and (angles["tuned"].abs() < 1e-3).all()
    other = ffn_concepts(tiny_lm("gemma3", seed=5), words, config)
    moved = compare_results(result, other)
    overall = moved[(moved["metric"] == "principal_angle") & (moved["key"] == "")]
    assert float(overall["tuned"].iloc[0]) > 1.0
    assert "vectors" not in ffn_concepts(lm, words, get("ffn_concepts").make_config(
        rank=4, top_words=3, runs=1)).tables
