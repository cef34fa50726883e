"""The study spec: models x analyses x datasets, resolved, checked and fingerprinted.

A study comes from a YAML file, CLI flags or Python values; all three go through
:func:`resolve`, which fills in every default, checks every field and returns a
:class:`StudySpec`. Its :meth:`~StudySpec.to_dict` is what the run directory records, and its
:meth:`~StudySpec.fingerprint` covers everything that changes numbers (models with dtype and
revision, analyses with their configs, datasets, seed), not where the run is written or which
executor runs it. YAML layout (every key optional except ``base``)::

    base: gemma-3-270m                 # or {spec: ..., key: ..., device: ..., dtype: ...}
    tuned: [smollm2-135m-instruct]     # any number; same forms as base
    analyses: [consistency, recall]    # names or groups, or a mapping name -> config overrides
    datasets:                          # per kind: source and limits (see study.datasets)
      pararel: {source: builtin, relations: [P17, P36], max_facts: 10}
    seed: 0
    device: null                       # study-wide defaults for every model
    dtype: null
    out: runs/default
    executor: local                    # or ray (with address: HOST:PORT to join a cluster)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from tunescope.data.files import one_line
from tunescope.errors import DataError, TunescopeError
from tunescope.result import fingerprint as hash_of
from tunescope.study import analysis_entries as analyses_mod
from tunescope.study import dataset_entries as datasets_mod
from tunescope.study import model_entries as models_mod
from tunescope.study.model_entries import ModelEntry
from tunescope.study.yaml_source import (
    Source,
    check_size,
    clipped,
    dotted,
    parse_value,
    parse_yaml,
    quoted,
)

TOP_KEYS = ("base", "tuned", "analyses", "datasets", "seed", "device", "dtype", "num_gpus",
            "trust_remote_code", "out", "executor", "address")
MODEL_KEYS = ("spec", "key", "device", "dtype", "revision", "num_gpus", "trust_remote_code")
EXECUTORS = ("local", "ray")
DEFAULT_OUT = "runs/default"


@dataclass(frozen=True)
class StudySpec:
    """A resolved study. ``models``: base first, then the tuned ones; ``analyses``: name ->
    config object, in run order; ``datasets``: kind -> entry (source and limits) for the kinds
    the analyses take; ``seed``; ``out``: the run directory; ``executor``: ``"local"`` or
    ``"ray"`` with ``address`` (None: a local Ray instance)."""

    models: tuple[ModelEntry, ...]
    analyses: dict
    datasets: dict
    seed: int = 0
    out: str = DEFAULT_OUT
    executor: str = "local"
    address: str | None = None
    source: Source = field(default_factory=Source, compare=False, repr=False)
    placement: dict = field(default_factory=dict, compare=False, repr=False)
    """The models as given and the study-wide device/dtype/num_gpus, to place them again for
    another executor."""

    @property
    def base(self) -> ModelEntry:
        return self.models[0]

    @property
    def tuned(self) -> tuple[ModelEntry, ...]:
        return self.models[1:]

    def model(self, key: str) -> ModelEntry:
        return next(m for m in self.models if m.key == key)

    def to_dict(self) -> dict:
        """Every resolved field as plain values (the run directory's ``study.yaml``); reading it
        back with :func:`resolve` gives an equal spec."""
        def model(m: ModelEntry) -> dict:
            return {k: v for k, v in m.to_dict().items() if k != "role"}
        return {"base": model(self.base), "tuned": [model(m) for m in self.tuned],
                "analyses": {n: analyses_mod.config_dict(c) for n, c in self.analyses.items()},
                "datasets": {k: dict(v) for k, v in self.datasets.items()},
                "seed": self.seed, "out": self.out, "executor": self.executor,
                "address": self.address}

    def numbers(self) -> dict:
        """What changes the numbers: the fingerprinted part of the spec."""
        full = self.to_dict()
        return {"models": {m.key: m.numbers_dict() for m in self.models},
                "analyses": full["analyses"], "datasets": full["datasets"], "seed": self.seed}

    def fingerprint(self, inputs: dict | None = None) -> str:
        """A short hash of :meth:`numbers` and ``inputs`` (hashes of the dataset files)."""
        return hash_of({"numbers": self.numbers(), "inputs": inputs or {}})

    def with_run(self, out: str | None = None, executor: str | None = None,
                 address: str | None = None) -> StudySpec:
        """The same study written elsewhere or run by another executor (devices and GPU
        requests placed again for it; the fingerprint changes only if a default dtype does)."""
        executor = executor or self.executor
        models = self.models
        if executor != self.executor and self.placement:
            models = tuple(_placed(m, self.placement["defaults"], executor)
                           for m in self.placement["given"])
        return replace(self, models=models, out=self.out if out is None else str(out),
                       executor=executor, address=self.address if address is None else address)


def differences(old, new, path=()) -> list[str]:
    """``"analyses.attribution.max_new_tokens 300 -> 32"`` for each leaf that differs between
    two plain nested values (mappings compared key by key)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in list(old) + [k for k in new if k not in old]:
            if key not in new:
                out.append(f"{dotted(path + (key,))} removed")
            elif key not in old:
                out.append(f"{dotted(path + (key,))} added")
            else:
                out += differences(old[key], new[key], path + (key,))
        return out
    if old != new:
        return [f"{dotted(path)} {json.dumps(old)} -> {json.dumps(new)}"]
    return []


# --- resolution ------------------------------------------------------------------------------

class _Resolver:
    """Turns plain values (from YAML, flags or Python) into a StudySpec, naming the path of the
    first problem."""

    def __init__(self, source: Source):
        self.src = source

    def fail(self, path, message):
        raise self.src.error(tuple(path), message)

    def mapping(self, value, path, what) -> dict:
        if not isinstance(value, dict):
            self.fail(path, f"{what} must be a mapping, got {quoted(value)}")
        return value

    def keys(self, value: dict, allowed, path, what):
        for key in value:
            if key not in allowed:
                self.fail(tuple(path) + (key,),
                          f"unknown key {quoted(key)} in {what}; keys: {', '.join(allowed)}")

    def optional_str(self, value, path):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            self.fail(path, f"must be a non-empty string or null, got {quoted(value)}")
        return value

    def num_gpus(self, value, path):
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 \
                or value != value or value == float("inf"):
            self.fail(path, f"must be a number >= 0, got {quoted(value)}")
        return value

    def model(self, value, path, role, study: dict) -> ModelEntry:
        short = isinstance(value, str)
        if short:
            value = {"spec": value}
        value = self.mapping(value, path, "a model (a name, path or hub id, or a mapping)")
        self.keys(value, MODEL_KEYS, path, "a model")
        spec = value.get("spec")
        if not isinstance(spec, str) or not spec.strip():
            self.fail(tuple(path) + ("spec",), f"a model needs 'spec' (a bundled name, path or "
                                               f"hub id), got {quoted(spec)}")
        try:
            models_mod.check_spec(spec)
        except TunescopeError as e:
            self.fail(path if short else tuple(path) + ("spec",), str(e))
        key = value.get("key")
        if key is None:
            key = models_mod.default_key(spec)
        elif not isinstance(key, str) or models_mod.check_key(key):
            self.fail(tuple(path) + ("key",), models_mod.check_key(key) if isinstance(key, str)
                      else f"must be a string, got {quoted(key)}")
        for name in ("device", "revision"):
            self.optional_str(value.get(name), tuple(path) + (name,))
        dtype = value.get("dtype", study.get("dtype"))
        if dtype is not None:
            canonical = models_mod.dtype_name(dtype) if isinstance(dtype, str) else None
            if canonical is None:
                self.fail(tuple(path) + ("dtype",) if "dtype" in value else ("dtype",),
                          f"unknown dtype {quoted(dtype)}; use one of "
                          f"{', '.join(models_mod.DTYPES)}")
            dtype = canonical
        gpus = self.num_gpus(value.get("num_gpus"), tuple(path) + ("num_gpus",))
        trust = value.get("trust_remote_code", study.get("trust_remote_code", False))
        if not isinstance(trust, bool):
            self.fail(tuple(path) + ("trust_remote_code",) if "trust_remote_code" in value
                      else ("trust_remote_code",), f"must be true or false, got {quoted(trust)}")
        return ModelEntry(spec=spec, key=key, role=role, device=value.get("device"),
                          dtype=dtype, revision=value.get("revision"), num_gpus=gpus,
                          trust_remote_code=trust)

    def models(self, raw: dict) -> tuple[ModelEntry, ...]:
        if raw.get("base") is None:
            self.fail(("base",), "missing: a study needs a base model ('base')")
        models = [self.model(raw["base"], ("base",), "base", raw)]
        tuned = raw.get("tuned")
        if tuned is None:
            tuned = []
        elif isinstance(tuned, (str, dict)):
            tuned = [tuned]
        elif not isinstance(tuned, list):
            self.fail(("tuned",), f"must be a model or a list of models, got {quoted(tuned)}")
        models += [self.model(t, ("tuned", i), "tuned", raw) for i, t in enumerate(tuned)]
        seen: dict[str, str] = {}
        for i, m in enumerate(models):
            if m.key in seen:
                where = ("base",) if i == 0 else ("tuned", i - 1)
                self.fail(where, f"duplicate model key {quoted(m.key)} (also {seen[m.key]}); give "
                                 "one of them its own 'key'")
            seen[m.key] = "the base" if i == 0 else f"tuned[{i - 1}]"
        return tuple(models)

    def analyses(self, raw, seed: int) -> dict:
        path = ("analyses",)
        if raw is None:
            raw = list(analyses_mod.GROUPS)
        if isinstance(raw, str):
            raw = [n.strip() for n in raw.split(",") if n.strip()]
        if isinstance(raw, list):
            raw = {name: None for name in raw} if all(isinstance(n, str) for n in raw) else raw
        if isinstance(raw, list):
            bad = next(i for i, n in enumerate(raw) if not isinstance(n, str))
            self.fail(path + (bad,), f"analysis names must be strings, got {quoted(raw[bad])}")
        raw = self.mapping(raw, path, "analyses (a list of names or a mapping name -> config)")
        if not raw:
            self.fail(path, f"no analyses given; valid: {analyses_mod.valid_names()}")
        overrides: dict[str, tuple[dict, tuple]] = {}
        for name, config in raw.items():
            members = analyses_mod.expand([name])
            if isinstance(members, str):
                self.fail(path + (name,), members)
            if config is None:
                config = {}
            self.mapping(config, path + (name,), f"the config of {quoted(name)}")
            for member in members:
                merged, _ = overrides.get(member, ({}, path + (name,)))
                overrides[member] = ({**merged, **config}, path + (name,))
        out = {}
        for name, (config, where) in overrides.items():
            try:
                out[name] = analyses_mod.make_config(name, config, seed)
            except KeyError as e:
                self.fail(where + (e.args[0],), e.args[1])
            except TypeError as e:
                if len(e.args) == 2:
                    self.fail(where + (e.args[0],), e.args[1])
                self.fail(where, f"invalid config: {e}")
            except (ValueError, TunescopeError) as e:
                self.fail(where, f"invalid config: {e}")
        return out

    def datasets(self, raw, analyses: dict) -> dict:
        from tunescope.analyses import REGISTRY

        path = ("datasets",)
        raw = {} if raw is None else self.mapping(raw, path, "datasets (kind -> source and limits)")
        self.keys(raw, tuple(datasets_mod.KINDS), path, "datasets")
        needed = list(dict.fromkeys(REGISTRY[a].dataset for a in analyses))
        out = {}
        for kind in needed:
            given = raw.get(kind)
            if given is None:
                given = {}
            elif isinstance(given, str):
                given = {"source": given}
            given = self.mapping(given, path + (kind,), f"dataset '{kind}' (source and limits)")
            defaults = datasets_mod.fields(kind)
            self.keys(given, tuple(defaults), path + (kind,), f"dataset '{kind}'")
            entry = {**defaults, **given}
            try:
                problems = datasets_mod.check_entry(kind, entry)
            except (OSError, ValueError) as e:      # a name too long, a NUL byte
                problems = [("source", f"not a usable path ({one_line(e.strerror or e)})")]
            for name, message in problems:
                self.fail(path + (kind, name), message)
            out[kind] = entry
        return out

    def seed(self, value) -> int:
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2 ** 32:
            self.fail(("seed",), f"must be an integer in 0..2^32-1, got {quoted(value)}")
        return value

    def resolve(self, raw) -> StudySpec:
        raw = self.mapping(raw, (), "a study")
        self.keys(raw, TOP_KEYS, (), "the study")
        seed = self.seed(raw.get("seed"))
        executor = raw.get("executor") or "local"
        if executor not in EXECUTORS:
            self.fail(("executor",), f"unknown executor {quoted(executor)}; use local or ray")
        address = self.optional_str(raw.get("address"), ("address",))
        out = raw.get("out") or DEFAULT_OUT
        if not isinstance(out, str):
            self.fail(("out",), f"must be a path, got {quoted(out)}")
        self.optional_str(raw.get("device"), ("device",))
        self.num_gpus(raw.get("num_gpus"), ("num_gpus",))
        models = self.models(raw)
        analyses = self.analyses(raw.get("analyses"), seed)
        datasets = self.datasets(raw.get("datasets"), analyses)
        defaults = {k: raw.get(k) for k in ("device", "num_gpus")}
        placed = tuple(_placed(m, defaults, executor) for m in models)
        return StudySpec(placed, analyses, datasets, seed, out, executor, address, self.src,
                         {"given": models, "defaults": defaults})


def _placed(m: ModelEntry, raw: dict, executor: str) -> ModelEntry:
    """``m`` with device, dtype and (for Ray) GPU request resolved for this machine; ``raw``:
    the study-wide ``device`` and ``num_gpus``."""
    import torch

    gpus = m.num_gpus if m.num_gpus is not None else raw.get("num_gpus")
    if executor == "ray" and gpus is None:
        gpus = 1 if torch.cuda.is_available() else 0
    device = m.device or raw.get("device")
    if device is None and executor == "ray":
        device = "cuda" if gpus else "cpu"
    elif device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = m.dtype or models_mod.default_dtype(device)
    return replace(m, device=device, dtype=dtype, num_gpus=gpus if executor == "ray" else None)


def resolve(raw, source: Source | None = None) -> StudySpec:
    """A StudySpec from plain values (see the module docstring for the layout); raises a
    one-line :class:`~tunescope.errors.DataError` naming the file, line and field of the first
    problem. Values past the bounds of :func:`~tunescope.study.yaml_source.check_size` (e.g. a
    list shared a billion times over) are refused before anything looks at them."""
    source = source or Source()
    check_size(raw, source)
    return _Resolver(source).resolve(raw)


def from_yaml(text: str, name: str = "<study>") -> StudySpec:
    """A StudySpec from YAML text (``name`` is the file named in errors)."""
    raw, source = parse_yaml(text, name)
    return resolve(raw, source)


def read_yaml(path) -> tuple[dict, Source]:
    """The plain values and line map of a study YAML file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError("no such study file", path=str(p)) from None
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 text ({e.reason} at byte {e.start})", path=str(p)) from None
    except OSError as e:
        raise DataError(f"cannot read: {e.strerror or e}", path=str(p)) from None
    return parse_yaml(text, str(p))


def set_value(raw: dict, assignment: str) -> dict:
    """``raw`` with one ``PATH=VALUE`` assignment applied, VALUE read as YAML (e.g.
    ``analyses.attribution.max_new_tokens=32``). A list of analyses becomes a mapping first (no
    analyses: every group). A VALUE past the bounds of a study (an alias bomb) is refused
    before it is built (:func:`~tunescope.study.yaml_source.parse_value`)."""
    target, sep, text = assignment.partition("=")
    parts = [p for p in target.strip().split(".") if p]
    if not sep or not parts:
        raise TunescopeError(f"--set expects PATH=VALUE (e.g. analyses.attribution."
                             f"max_new_tokens=32), got {quoted(assignment)}")
    shown_target = clipped(target.strip(), 80)
    value = parse_value(text, f"--set {shown_target}")
    raw = dict(raw)
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if part == "analyses" and i == 0 and isinstance(child, (list, str, type(None))):
            names = (list(analyses_mod.GROUPS) if child is None
                     else child.split(",") if isinstance(child, str) else child)
            child = {n.strip(): None for n in names if isinstance(n, str) and n.strip()}
        if child is None:
            child = {}
        if not isinstance(child, dict):
            raise TunescopeError(f"--set {shown_target}: "
                                 f"{quoted('.'.join(parts[:i + 1]))} is not a mapping")
        node[part] = dict(child)
        node = node[part]
    node[parts[-1]] = value
    return raw
