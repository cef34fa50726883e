"""The models of a study: one base and any number of tuned variants, each with a ``key``.

A model's key names its shards and its rows in combined tables: a filesystem-safe slug of its
spec, unique within the study (bundled name as is; hub id ``org/name`` -> ``org--name``; a
path -> its directory name or file stem), always matching ``[A-Za-z0-9._-]+`` and never
``.`` or ``..``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

from tunescope.errors import ModelNotFoundError
from tunescope.models import loading
from tunescope.study.yaml_source import QUOTE_LIMIT, clipped, quoted

KEY = re.compile(r"^[A-Za-z0-9._-]+$")
DTYPES = ("float32", "float16", "bfloat16")
_DTYPE_ALIASES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


@dataclass(frozen=True)
class ModelEntry:
    """One model of a study.

    spec: what :func:`tunescope.load` receives (bundled name, hub id, directory, ``.gguf`` file).
    key: the slug naming its shards. role: ``"base"`` or ``"tuned"``.
    device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"`` (spread over GPUs with
        ``device_map``); dtype: ``"float32"``, ``"float16"`` or ``"bfloat16"`` (resolved: never
        None once the study is resolved); revision: hub revision.
    num_gpus: GPUs a Ray actor requests for this model (the ``ray`` executor only).
    trust_remote_code: run the model repository's own code (off unless the user asks).
    """

    spec: str
    key: str
    role: str
    device: str | None = None
    dtype: str | None = None
    revision: str | None = None
    num_gpus: float | None = None
    trust_remote_code: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    def numbers_dict(self) -> dict:
        """The fields that change a model's numbers (for the study fingerprint)."""
        return {"spec": self.spec, "key": self.key, "role": self.role, "dtype": self.dtype,
                "revision": self.revision}


def check_spec(spec: str) -> None:
    """Raise ModelNotFoundError for a spec :func:`tunescope.load` can never resolve (a missing
    path, or a name that is neither bundled nor a hub id); hub ids are not checked (offline)."""
    how = loading.spec_kind(spec)
    if how == "unknown":
        raise loading.unknown_model(spec)
    if how in ("gguf", "missing") and not loading.path_exists(spec):
        raise ModelNotFoundError(f"no such file or directory: {clipped(spec, QUOTE_LIMIT)}")


def default_key(spec: str) -> str:
    """The slug of a model spec (see the module docstring)."""
    how = loading.spec_kind(spec)
    if how == "bundled":
        raw = spec
    elif how == "hub":
        raw = spec.replace("/", "--")
    else:
        path = Path(spec).expanduser()
        raw = path.stem if path.suffix == ".gguf" else (path.name or path.resolve().name)
    key = re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-") or "model"
    return "model" if key in (".", "..") else key


MAX_KEY = 100
"""Longest model key (it names files and folders, whose names the system caps at 255 bytes)."""


def check_key(key: str) -> str | None:
    """The problem with a user-given key, or None when it is valid."""
    if not KEY.match(key) or key in (".", ".."):
        return f"key {quoted(key)} must match [A-Za-z0-9._-]+ and not be '.' or '..'"
    if len(key) > MAX_KEY:
        return f"key {quoted(key)} is longer than {MAX_KEY} characters"
    return None


def dtype_name(value: str) -> str | None:
    """The canonical dtype name of ``value`` (aliases fp32/fp16/bf16 accepted), None if unknown."""
    value = _DTYPE_ALIASES.get(value, value)
    return value if value in DTYPES else None


def default_dtype(device: str) -> str:
    """The name of ``tunescope.load``'s default dtype on ``device`` (float32 on the CPU,
    bfloat16 on accelerators)."""
    return str(loading.default_dtype(device)).removeprefix("torch.")
