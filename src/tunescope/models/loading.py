"""``load(spec)``: one entry point for bundled names, hub ids, local directories and GGUF files."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch

from tunescope.common import gc_pause
from tunescope.errors import (
    HubUnavailableError,
    ModelFileError,
    ModelNotFoundError,
    TunescopeError,
    UnsupportedArchitectureError,
)
from tunescope.models import bundled
from tunescope.models.anatomy import check_supported
from tunescope.models.lm import LM

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_dtype(device: str) -> torch.dtype:
    """float32 on the CPU (batched = unbatched, exactly); bfloat16 on accelerators."""
    return torch.float32 if str(device).startswith("cpu") else torch.bfloat16


def _dtype(value) -> torch.dtype | None:
    if value is None or isinstance(value, torch.dtype):
        return value
    names = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
             "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if str(value) not in names:
        raise TunescopeError(f"unknown dtype '{value}'; use one of {', '.join(names)}")
    return names[str(value)]


def load(spec: str | os.PathLike, dtype=None, device: str | None = None,
         revision: str | None = None, attn_implementation: str | None = None,
         trust_remote_code: bool = False) -> LM:
    """Load a causal LM for analysis.

    Args:
        spec: a bundled name (``tunescope models`` lists them; prepared on first use), a hub id
            (``org/name``), a local Hugging Face model directory, or a ``.gguf`` file.
        dtype: torch dtype or its name; default float32 on CPU, bfloat16 on GPU.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, or ``"auto"`` to spread a model that does
            not fit one GPU over all visible GPUs; default cuda when available.
        revision: hub revision (branch, tag or commit).
        attn_implementation: ``"sdpa"`` or ``"eager"``; default the model's own choice.
        trust_remote_code: run code shipped with a hub model; off unless you ask for it.
    """
    name = str(spec)
    device = device or default_device()
    dtype = _dtype(dtype) or default_dtype("cuda" if device == "auto" else device)
    kwargs = dict(dtype=dtype, attn_implementation=attn_implementation,
                  trust_remote_code=trust_remote_code)
    with gc_pause.paused():     # a tokenizer's vocabulary parsed into Python objects
        return _load(name, device, dtype, revision, kwargs)


def _load(name: str, device: str, dtype, revision: str | None, kwargs: dict) -> LM:
    path = Path(name).expanduser()
    how = spec_kind(name)
    if how == "bundled":
        directory = bundled.pull(name)
        meta = bundled.prepared_metadata(directory)
        lm = _from_dir(directory, name, "bundled", device, revision=meta.get("version"), **kwargs)
        lm.extra["role"] = meta.get("role")
        return lm
    if how == "gguf":
        return _from_gguf(path, name, device, dtype)
    if how == "local":
        if not path.is_dir():
            raise ModelFileError(f"{path} is neither a model directory nor a .gguf file")
        return _from_dir(path, name, "local", device, **kwargs)
    if how == "hub":
        return _from_hub(name, device, revision, **kwargs)
    if how == "missing":
        raise ModelNotFoundError(f"no such file or directory: {name}")
    raise unknown_model(name)


def spec_kind(name: str) -> str:
    """How :func:`load` reads the spec ``name``, by the first rule that holds: ``"bundled"``
    (a bundled model's name), ``"gguf"`` (ends in .gguf), ``"local"`` (an existing path),
    ``"hub"`` (``org/name``), ``"missing"`` (looks like a path but is not there) or
    ``"unknown"``."""
    if name in bundled.BUNDLED:
        return "bundled"
    if name.endswith(".gguf"):
        return "gguf"
    if path_exists(name):
        return "local"
    if _HUB_ID.match(name) and not name.startswith((".", "~", "/")):
        return "hub"
    if os.sep in name or name.startswith((".", "~")):
        return "missing"
    return "unknown"


def path_exists(name: str) -> bool:
    """Whether ``name`` is an existing path (a name the system refuses, too long or with a
    NUL byte, is none)."""
    try:
        return Path(name).expanduser().exists()
    except (OSError, ValueError):
        return False


def unknown_model(name: str) -> ModelNotFoundError:
    """The error for a spec that is no bundled name, no existing path and no hub id."""
    if len(name) > 80:
        name = name[:77] + "..."
    return ModelNotFoundError(
        f"unknown model '{name}': not a bundled model ({', '.join(bundled.BUNDLED)}), not an "
        "existing path, and not a hub id of the form org/name")


def _check_config(config_file: Path) -> None:
    try:
        model_type = json.loads(config_file.read_text()).get("model_type", "?")
    except (OSError, ValueError) as e:
        raise ModelFileError(f"cannot read {config_file}: {e}") from None
    check_supported(model_type)


def _place(model, device: str):
    if device != "auto" and str(model.device) != device:
        model = model.to(device)
    return model


def _from_dir(path: Path, name: str, source: str, device: str, revision=None, **kwargs) -> LM:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not (path / "config.json").is_file():
        raise ModelNotFoundError(f"{path} is not a Hugging Face model directory (no config.json)")
    _check_config(path / "config.json")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=kwargs["trust_remote_code"])
        model = AutoModelForCausalLM.from_pretrained(
            path, device_map="auto" if device == "auto" else None, **kwargs)
    except Exception as e:  # noqa: BLE001 - any failure to read user files is reported as such
        raise ModelFileError(f"cannot load model from {path}: {_one_line(e)}") from None
    lm = LM.from_hf(_place(model, device), tokenizer, name=name, source=source,
                    revision=revision)
    recipe = tuning_summary(path)
    if recipe is not None:
        lm.extra["tuned_by"] = recipe
    return lm


def tuning_summary(path: Path) -> dict | None:
    """What a model directory made by ``tunescope tune`` records of how it was made (base, data
    source and fingerprint, method, seed, steps, final loss), from its ``tunescope-tune.json``;
    None for any other directory (or an unreadable recipe: the model still loads)."""
    file = path / "tunescope-tune.json"
    if not file.is_file():
        return None
    try:
        recipe = json.loads(file.read_text())
        config, data = recipe["config"], recipe["data"]
        return {"base": recipe["base"]["spec"], "data": data["source"],
                "data_fingerprint": data["fingerprint"], "n_examples": data["n_examples"],
                "method": config["method"], "seed": config["seed"], "steps": recipe["steps"],
                "final_loss": recipe["final_loss"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _from_gguf(path: Path, name: str, device: str, dtype) -> LM:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not path.is_file():
        raise ModelNotFoundError(f"no such GGUF file: {path}")
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelFileError(f"{path} is not a GGUF file (bad magic number)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=dtype)
    except Exception as e:  # noqa: BLE001 - a damaged file fails in many ways (struct, key, ...)
        message = _one_line(e)
        if "architecture" in message.lower() and "not supported" in message.lower():
            raise UnsupportedArchitectureError(f"{path}: {message}") from None
        raise ModelFileError(f"cannot read GGUF file {path}: {message}") from None
    model.hf_quantizer = None
    stat = path.stat()
    return LM.from_hf(_place(model, device), tokenizer, name=name, source="gguf",
                      revision=f"{stat.st_size}-{int(stat.st_mtime)}")


def _from_hub(hub_id: str, device: str, revision, **kwargs) -> LM:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() not in ("1", "true", "yes"):
        _probe_hub(hub_id)
    try:
        config = AutoConfig.from_pretrained(hub_id, revision=revision,
                                            trust_remote_code=kwargs["trust_remote_code"])
    except Exception as e:  # noqa: BLE001 - hub failures come in many types; all mean the same
        raise _hub_error(hub_id, e) from None
    check_supported(config.model_type)
    try:
        tokenizer = AutoTokenizer.from_pretrained(hub_id, revision=revision,
                                                  trust_remote_code=kwargs["trust_remote_code"])
        model = AutoModelForCausalLM.from_pretrained(
            hub_id, revision=revision, device_map="auto" if device == "auto" else None, **kwargs)
    except Exception as e:  # noqa: BLE001
        raise _hub_error(hub_id, e) from None
    return LM.from_hf(_place(model, device), tokenizer, name=hub_id, source="hub",
                      revision=revision or getattr(config, "_commit_hash", None))


def _probe_hub(hub_id: str, timeout: float = 5.0) -> None:
    """Fail fast (instead of minutes of retries) when the hub's host cannot be reached."""
    import socket
    from urllib.parse import urlparse

    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
    except OSError as e:
        raise _hub_error(hub_id, ConnectionError(f"{url.hostname}: {e}")) from None


def _hub_error(hub_id: str, error: Exception) -> TunescopeError:
    message = _one_line(error)
    lowered = message.lower()
    hint = ("download the model elsewhere and pass its local directory, e.g. "
            "tunescope.load('/path/to/model') or `--base /path/to/model`")
    if any(s in lowered for s in ("not a valid model identifier", "repository not found",
                                  "404", "does not appear to have")):
        return HubUnavailableError(f"hub id '{hub_id}' was not found on the model hub (or is "
                                   f"private); check the id, or {hint}")
    if len(message) > 200:
        message = message[:199].rstrip() + "…"
    return HubUnavailableError(f"cannot reach the model hub for '{hub_id}' (offline?): "
                               f"{message}; {hint}")


def _one_line(error: Exception) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
