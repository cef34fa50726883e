"""The helpers the peer benchmarks share (benchmarks/peers/common.py): agreement of two
arrays, timing that takes turns, the printed line, and the peer environment check (no peer is
installed here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "peers" / "common.py"


@pytest.fixture(scope="module")
def common():
    spec = importlib.util.spec_from_file_location("peer_common", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_agreement_by_hand(common):
    ours = np.array([[1.0, -2.0], [0.5, 0.0]])
    peer = np.array([[1.0, -2.5], [0.25, 0.0]])
    diff, rel = common.agreement(ours, peer)
    assert diff == 0.5 and rel == pytest.approx(0.5 / 2.5)
    assert common.agreement(peer, peer) == (0.0, 0.0)
    assert common.agreement(np.zeros(3), np.zeros(3)) == (0.0, 0.0)
    assert common.agreement(np.ones(2), np.zeros(2)) == (1.0, float("inf"))
    assert common.agreement(np.zeros((0, 4)), np.zeros((0, 4))) == (0.0, 0.0)
    with pytest.raises(ValueError, match="shapes differ"):
        common.agreement(np.zeros(3), np.zeros(4))


def test_interleaved_takes_turns_and_keeps_each_fastest_time(common):
    order = []
    best, results = common.interleaved([lambda: order.append("a") or "A",
                                        lambda: order.append("b") or "B"], repeat=2)
    assert order == ["a", "b", "a", "b", "a", "b"] and results == ["A", "B"]
    assert all(0 <= s < 1 for s in best)
    order.clear()
    common.interleaved([lambda: order.append("a")], repeat=1, warm_up=False)
    assert order == ["a"]


def test_line_gives_agreement_and_the_throughput_ratio(common):
    text = common.line("C1 scoring vs lm-eval", (1.5e-6, 2e-7), 2.0, 9.0, "10 requests")
    assert text == ("C1 scoring vs lm-eval: max abs diff 1.50e-06, max rel diff 2.00e-07; "
                    "tunescope 2.00 s, peer 9.00 s for 10 requests; "
                    "throughput ratio tunescope/peer 4.50x")


def test_ensure_peers_returns_when_everything_imports(common, monkeypatch):
    monkeypatch.setattr(common.os, "execv", lambda *a: pytest.fail("re-ran the script"))
    common.ensure_peers(["json", "numpy"])
    assert common.missing(["json", "surely_not_a_module_xyz"]) == ["surely_not_a_module_xyz"]


def test_ensure_peers_stops_inside_the_peer_environment_when_still_missing(common, monkeypatch):
    monkeypatch.setattr(common, "PEERS_VENV", Path(sys.prefix))
    with pytest.raises(SystemExit, match="surely_not_a_module_xyz"):
        common.ensure_peers(["surely_not_a_module_xyz"])
