"""The package version (one place; the tuning recipe records it)."""

__version__ = "0.1.0"
