"""Result: saves to Parquet + JSON atomically and loads back equal."""

import json
import os

import numpy as np
import pandas as pd
import pytest
from tiny import tiny_lm

from tunescope.analyses import get, next_token_predictions
from tunescope.errors import DataError, OutputError, TunescopeError
from tunescope.result import Result, check_writable, fingerprint


def _result():
    tables = {
        "per_relation": pd.DataFrame({"relation": ["P36", "P103"], "accuracy": [0.5, 0.25],
                                      "n": np.array([10, 4], dtype="int64")}),
        "layers": pd.DataFrame({"layer": [0, 1, 2], "gap": [0.1, np.nan, -0.3]}),
    }
    return Result("demo", tables, summary={"macro_accuracy": np.float64(0.375), "bad": float("nan")},
                  provenance={"model": {"name": "m"}, "seed": 3})


def test_save_load_round_trip(tmp_path):
    r = _result()
    assert r.summary["bad"] is None  # non-finite numbers become JSON null
    path = r.save(tmp_path / "out")
    assert sorted(p.name for p in path.iterdir()) == ["provenance.json", "result.json",
                                                     "summary.json", "tables"]
    loaded = Result.load(path)
    assert loaded == r
    assert loaded.tables["per_relation"]["n"].dtype == np.int64
    assert loaded.summary["macro_accuracy"] == 0.375


def test_changed_table_is_not_equal(tmp_path):
    r = _result()
    other = Result.load(r.save(tmp_path / "x"))
    other.tables["layers"].loc[0, "gap"] = 0.2
    assert other != r


def test_save_replaces_atomically_and_leaves_no_temp(tmp_path):
    r = _result()
    r.save(tmp_path / "out")
    r2 = Result("demo", {"t": pd.DataFrame({"a": [1]})})
    r2.save(tmp_path / "out")
    assert Result.load(tmp_path / "out") == r2
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_incomplete_directory_is_rejected(tmp_path):
    path = _result().save(tmp_path / "out")
    (path / "result.json").unlink()
    with pytest.raises(DataError, match="not a complete tunescope result"):
        Result.load(path)
    path.joinpath("result.json").write_text(json.dumps({"format": "other/9", "tables": []}))
    with pytest.raises(DataError, match="unknown result format"):
        Result.load(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_nonroot(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(OutputError):
        _result().save(locked / "out")


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OutputError, match="cannot write results"):
        _result().save(blocker / "out")
    with pytest.raises(OutputError, match="not writable"):
        check_writable(blocker / "sub")


def test_fingerprint_is_stable_and_sensitive():
    assert fingerprint(["a", "b"]) == fingerprint(["a", "b"])
    assert fingerprint(["a", "b"]) != fingerprint(["b", "a"])
    assert len(fingerprint({"x": 1})) == 16


def test_registered_analysis_returns_result_with_provenance(tmp_path):
    lm = tiny_lm("gpt2")
    cfg = get("next_token_predictions").make_config(k=3)
    res = next_token_predictions(lm, ["The capital of France is", "Paris is"], cfg)
    table = res.tables["predictions"]
    assert len(table) == 6 and table["rank"].tolist() == [1, 2, 3, 1, 2, 3]
    assert (table.groupby("prompt")["probability"].apply(lambda p: p.is_monotonic_decreasing)).all()
    assert res.provenance["model"]["family"] == "gpt2"
    assert res.provenance["config"] == {"k": 3, "chat": False}
    assert "torch" in res.provenance["versions"]
    assert Result.load(res.save(tmp_path / "r")) == res
    with pytest.raises(TunescopeError, match="has no parameter"):
        get("next_token_predictions").make_config(topk=3)
    with pytest.raises(TunescopeError, match="unknown analysis"):
        get("nope")
