"""Where tunescope keeps what it prepares: the cache directory."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Where tunescope caches prepared models, datasets and lexicons: ``$TUNESCOPE_CACHE`` or
    ``~/.cache/tunescope``."""
    return Path(os.environ.get("TUNESCOPE_CACHE") or Path.home() / ".cache" / "tunescope")
