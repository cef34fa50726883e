"""The Ray executor: a reduced study on tiny models through a local Ray instance gives the same
shards and tables as the local executor."""

import pytest

from study.test_study_run import tiny_raw, tiny_study_files  # noqa: F401 - the fixture
from tunescope.study import Study

ray = pytest.importorskip("ray")

REDUCED = {"prediction_consistency": {}, "representation_consistency": {},
           "attention_knockout": {"max_examples": 3, "window": 3},
           "attribution": {"max_new_tokens": 3},
           "ffn_concepts": {"rank": 4, "top_words": 5}}


def test_ray_equals_local(tiny_study_files, tmp_path):  # noqa: F811
    raw = tiny_raw(tiny_study_files, analyses=REDUCED)
    local = Study.from_dict(raw).run(tmp_path / "local", compare=False, report=False)
    remote = Study.from_dict(raw).run(tmp_path / "ray", executor="ray", compare=False,
                                      report=False)
    assert not ray.is_initialized()                     # the local instance was shut down
    assert [r["status"] for r in remote.records] == ["done"] * 10, remote.failed
    assert [(r["model"], r["analysis"]) for r in remote.records] == \
        [(r["model"], r["analysis"]) for r in local.records]
    for analysis, by_model in local.results.items():
        for key, result in by_model.items():
            other = remote.results[analysis][key]
            assert other.tables.keys() == result.tables.keys()
            for name, table in result.tables.items():
                assert other.tables[name].equals(table), (analysis, key, name)
            assert other.summary == result.summary
    import json
    stored = [json.loads((tmp_path / d / "spec.json").read_text()) for d in ("local", "ray")]
    assert stored[0]["fingerprint"] == stored[1]["fingerprint"]          # the same study
    assert stored[1]["spec"]["executor"] == "ray"
    # the same command again resumes through Ray without starting any actor work
    again = Study.from_dict(raw).run(tmp_path / "ray", executor="ray", compare=False,
                                     report=False)
    assert (again.ran, again.skipped) == (0, 10)
