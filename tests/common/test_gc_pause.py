"""gc_pause.paused: no cycle-collector pass inside, the former state restored after."""

import gc

import pytest

from tunescope.common import gc_pause


def test_paused_restores_the_collector_state_even_on_error():
    assert gc.isenabled()
    with gc_pause.paused():
        assert not gc.isenabled()
        with gc_pause.paused():                         # nested: still off inside
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_pause.paused():
        raise RuntimeError("boom")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_pause.paused():
            pass
        assert not gc.isenabled()                        # was off: stays off
    finally:
        gc.enable()


def test_no_pass_runs_inside_and_cycles_are_freed_after():
    import weakref

    class Node:
        pass

    passes = []

    def count(phase, info):
        if phase == "start":
            passes.append(info["generation"])

    gc.callbacks.append(count)
    try:
        with gc_pause.paused():
            junk = [[{"k": [i]}] for i in range(200_000)]          # would set off passes
            node = Node()
            node.me = node
            alive = weakref.ref(node)
            del node, junk
        assert passes == []
        gc.collect()
        assert alive() is None
    finally:
        gc.callbacks.remove(count)
