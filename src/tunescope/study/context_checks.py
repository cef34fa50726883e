"""Checks of a study's inputs against its models, run before anything is written.

:func:`check_contexts`: no input may be longer than a model's context (the largest number of
positions it was trained for). The limit comes from the model's config file and the lengths
from its tokenizer, both read from disk without loading the weights, and only for the models
whose files are already here (a bundled model that is prepared, a local directory, a hub model
in the local cache); the others are checked by the engine when they run
(:func:`tunescope.engine.batching.encode` refuses an over-long input before any forward pass).
"""

from __future__ import annotations

import json
from pathlib import Path

from tunescope.data.context import check_context
from tunescope.models.lm import context_length
from tunescope.study.spec import StudySpec


def local_model_dir(spec: str, revision: str | None = None) -> Path | None:
    """The directory holding model ``spec``'s config and tokenizer when it is on this machine
    already (nothing is downloaded or prepared); None otherwise (and for .gguf files)."""
    from tunescope.models import bundled
    from tunescope.models.loading import spec_kind

    how = spec_kind(spec)
    if how == "bundled":
        return bundled.model_dir(spec) if bundled.is_ready(spec) else None
    if how == "local":
        path = Path(spec).expanduser()
        return path if (path / "config.json").is_file() else None
    if how == "hub":
        try:
            from huggingface_hub import snapshot_download
            path = Path(snapshot_download(spec, revision=revision, local_files_only=True,
                                          allow_patterns=["config.json", "tokenizer*",
                                                          "special_tokens_map.json"]))
        except Exception:   # not in the cache (or no hub library): checked when it runs
            return None
        return path if (path / "config.json").is_file() else None
    return None


class _LazyTokenizer:
    """The tokenizer of a model directory, loaded on its first call (most studies never need
    it: short inputs are cleared by their byte length alone)."""

    def __init__(self, directory: Path, trust_remote_code: bool):
        self.directory = directory
        self.trust_remote_code = trust_remote_code
        self._tokenizer = None

    def _get(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer
            self._tokenizer = AutoTokenizer.from_pretrained(
                self.directory, trust_remote_code=self.trust_remote_code)
        return self._tokenizer

    def __call__(self, *args, **kwargs):
        return self._get()(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._get(), name)


def check_contexts(spec: StudySpec, data: dict) -> None:
    """Raise a :class:`~tunescope.errors.DataError` naming the file, line and length of the
    first input longer than the context of a study model that is on this machine."""
    for model in spec.models:
        directory = local_model_dir(model.spec, model.revision)
        if directory is None:
            continue
        try:
            config = json.loads((directory / "config.json").read_text())
        except (OSError, ValueError):
            continue        # the loader reports a broken config when the model loads
        limit = context_length(config) if isinstance(config, dict) else None
        if limit is None:
            continue
        tokenizer = _LazyTokenizer(directory, model.trust_remote_code)
        for kind, dataset in data.items():
            source = spec.datasets[kind]["source"]
            check_context(kind, dataset, tokenizer, limit, source, model=model.key)
