"""Shared fixtures: tiny models of every family (milliseconds) and the two real bundled models."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from tiny import FAMILIES, tiny_lm  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(params=FAMILIES)
def family(request) -> str:
    return request.param


@pytest.fixture
def lm(family):
    """A tiny LM of each supported family (SDPA attention where the family has it)."""
    return tiny_lm(family)


@pytest.fixture(scope="session")
def gemma():
    """The bundled Gemma 3 270M base model (prepared on first use)."""
    import tunescope
    return tunescope.load("gemma-3-270m")


@pytest.fixture(scope="session")
def smollm():
    """The bundled SmolLM2-135M-Instruct model (prepared on first use)."""
    import tunescope
    return tunescope.load("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not available")
    return SHARED_DATA
