"""``tunescope.tune(...)``: make an instruction-tuned variant of a model, saved as a plain merged
Hugging Face directory with its recipe.

The output directory, when finished, holds what ``tunescope.load(DIR)`` reads (``config.json``,
``model.safetensors``, the tokenizer, with the chat template the model was tuned with), the
LoRA adapter on its own (``adapter/``, for LoRA), and the recipe, ``tunescope-tune.json``: the
base (name, revision, family), the data (source, fingerprint, number of examples), the method
and every hyperparameter, the template, the precision and device, the steps, the loss at every
step and the final loss, tokens and time, and the versions of tunescope, torch, transformers
and peft. ``config.json`` is written last, so a directory killed while saving never loads as a
model. While it runs, the directory holds the run's lock (:mod:`tunescope.common.lock`) and a
work folder, ``.tunescope-tune/``, with checkpoints: running the same command again resumes from
the last one and ends with the same weights; a finished directory with the same recipe is
returned at once; one with another recipe is refused unless ``force``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tunescope._version import __version__
from tunescope.common.atomic import fault, make_temp_dir, replace_dir, write_atomic
from tunescope.common.lock import run_lock
from tunescope.common.progress import progress as bar
from tunescope.data.files import format_document
from tunescope.errors import DataError, OutputError, TunescopeError
from tunescope.tuning.config import TuneConfig
from tunescope.tuning.loop import resolve_precision, schedule, train
from tunescope.tuning.sources import TuningData, resolve
from tunescope.tuning.template import chat_template, encode_example

RECIPE = "tunescope-tune.json"
WORK = ".tunescope-tune"
FORMAT = "tunescope-tune/1"
MODEL_FILES = ("model.safetensors", "model.safetensors.index.json", "config.json",
               "generation_config.json", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "chat_template.jinja", "tokenizer.model")


@dataclass(frozen=True)
class TunedModel:
    """A finished tuning run: ``path`` (load it with :func:`tunescope.load`) and its
    ``recipe`` (the contents of ``tunescope-tune.json``)."""

    path: Path
    recipe: dict

    @property
    def final_loss(self) -> float:
        return self.recipe["final_loss"]


def read_recipe(path: str | os.PathLike) -> dict | None:
    """The recipe of a finished tuning directory, or None when it holds none."""
    return format_document(Path(path) / RECIPE, "tuning recipe", FORMAT)


def tune(base: str, data: str | TuningData = "builtin", out: str | os.PathLike = "tuned",
         config: TuneConfig | None = None, *, device: str | None = None, force: bool = False,
         max_examples: int | None = None, trust_remote_code: bool = False,
         progress: bool = True) -> TunedModel:
    """Instruction-tune ``base`` on ``data`` and save the merged model in ``out``.

    Args:
        base: any model :func:`tunescope.load` takes (bundled name, hub id, directory, .gguf).
        data: ``"builtin"``, a JSONL/CSV/TSV file, ``"distill:MODEL"``, or a
            :class:`~tunescope.tuning.sources.TuningData`.
        out: the output directory (created; resumed when it holds an unfinished run of the same
            recipe).
        config: method and hyperparameters (:class:`TuneConfig`; LoRA r=8 by default).
        device: ``"cpu"``, ``"cuda"``...; default a GPU when there is one.
        force: start over in a directory that holds another recipe's run (tunescope's own
            files are removed; anything else in the directory stays).
        max_examples: tune on the first n examples only.
    """
    import torch

    from tunescope.models import loading

    config = config or TuneConfig()
    out = Path(out).expanduser()
    _check_out(out)
    with run_lock(out):
        work = out / WORK
        with fault("create", work):
            work.mkdir(exist_ok=True)
        if not isinstance(data, TuningData):
            data = resolve(data, work=work, max_examples=max_examples, device=device)
        lm = loading.load(base, dtype=torch.float32, device=device,
                            trust_remote_code=trust_remote_code)
        template, default_template = chat_template(lm.tokenizer)
        encoded = [encode_example(lm, e, template, config.max_length) for e in data.examples]
        key = _run_key(lm, data, config, template)
        finished = read_recipe(out)
        if finished is not None and finished.get("key") == key and not force:
            _tidy(work)
            return TunedModel(out, finished)
        if finished is not None or _has_other_run(work, key):
            if not force:
                raise TunescopeError(
                    f"{out} holds a tuning run of another recipe; use another --out or --force")
            _remove_own(out)
            with fault("create", work):
                work.mkdir(exist_ok=True)
        model = _trainable_model(lm.model, config)
        state = _train(model, lm, encoded, config, work, key, progress, data.name)
        _save(out, model, lm, config, template if default_template else None)
        recipe = _recipe(lm, data, config, state, key, default_template, device=str(lm.device),
                         max_examples=max_examples)
        _write_json(out / RECIPE, recipe)
        with fault("write", out / "config.json"):
            os.replace(out / WORK / "config.json", out / "config.json")
        shutil.rmtree(work / "checkpoint", ignore_errors=True)
        _tidy(work)
        return TunedModel(out, recipe)


# --- steps -----------------------------------------------------------------------------------
def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OutputError(f"output directory {out} is a file")


def _tidy(work: Path) -> None:
    """Remove the work folder when nothing is left in it."""
    try:
        work.rmdir()
    except OSError:
        pass


def _run_key(lm, data: TuningData, config: TuneConfig, template: str) -> str:
    """What makes two runs the same run: base, data, recipe and template."""
    described = {"base": lm.name, "revision": lm.revision, "data": data.fingerprint,
                 "config": config.to_dict(), "template": template}
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


def _has_other_run(work: Path, key: str) -> bool:
    state = work / "checkpoint" / "state.json"
    if not state.is_file():
        return False
    try:
        return json.loads(state.read_text()).get("key") != key
    except (OSError, ValueError):
        return True


def _remove_own(out: Path) -> None:
    """Remove tunescope's own files from a tuning directory (the model files, the adapter, the
    recipe, the work folder); nothing else."""
    for name in (*MODEL_FILES, RECIPE):
        (out / name).unlink(missing_ok=True)
    for folder in ("adapter", WORK):
        shutil.rmtree(out / folder, ignore_errors=True)


def _trainable_model(model, config: TuneConfig):
    """``model`` with LoRA adapters on every linear layer of its blocks (the output projection
    excluded), initialised with ``config.seed``; or, for full tuning, every parameter
    trainable."""
    import torch

    torch.manual_seed(config.seed)
    if config.method == "full":
        model.requires_grad_(True)
        return model
    import warnings

    from peft import LoraConfig, get_peft_model
    lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=0.0,
                      target_modules="all-linear", bias="none", task_type="CAUSAL_LM")
    with warnings.catch_warnings():     # peft asks transformers a deprecated question
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(model, lora)


def _hf(model):
    """The Hugging Face causal LM inside a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _train(model, lm, encoded, config: TuneConfig, work: Path, key: str, progress: bool,
           name: str):

    total = len(schedule(len(encoded), config))
    recent: list[tuple[int, float]] = []

    with bar(total if progress else 0, f"tuning on {name}") as shown:
        def on_step(state, seconds):
            recent.append((int(state.tokens), seconds))
            del recent[:-10]
            done = recent[-1][0] - (recent[0][0] if len(recent) > 1 else 0)
            spent = sum(s for _, s in recent[1:]) if len(recent) > 1 else seconds
            shown.advance()
            shown.note(f"loss {state.losses[-1]:.3f}  {done / max(spent, 1e-9):,.0f} tok/s")

        return train(_hf(model), encoded, config, pad_id=lm.tokenizer.pad_token_id,
                     softcap=lm.anatomy.logit_softcap, work=work, key=key, on_step=on_step)


def _save(out: Path, model, lm, config: TuneConfig, default_template: str | None) -> None:
    """The adapter (LoRA), then the merged model and the tokenizer; ``config.json`` is kept in
    the work folder until the recipe is written."""

    with fault("write the tuned model to", out):
        if config.method == "lora":
            tmp = make_temp_dir(out, "adapter")
            model.save_pretrained(str(tmp), safe_serialization=True)
            replace_dir(tmp, out / "adapter")
            merged = model.merge_and_unload()
        else:
            merged = model
        merged.requires_grad_(False)
        tmp = make_temp_dir(out, "model")
        merged.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer = lm.tokenizer
        if default_template is not None:
            tokenizer.chat_template = default_template
        tokenizer.save_pretrained(str(tmp))
        for item in sorted(tmp.iterdir()):
            target = (out / WORK / item.name) if item.name == "config.json" else out / item.name
            os.replace(item, target)
        tmp.rmdir()


def _recipe(lm, data: TuningData, config: TuneConfig, state, key: str,
            default_template: bool, device: str, max_examples: int | None) -> dict:
    import peft
    import torch
    import transformers


    tail = state.losses[-max(1, len(state.losses) // 10):]
    return {
        "format": FORMAT, "key": key,
        "base": {"spec": lm.name, "revision": lm.revision, "family": lm.family},
        "data": {"source": data.source, "fingerprint": data.fingerprint,
                 "n_examples": len(data.examples), "max_examples": max_examples,
                 **data.details},
        "config": config.to_dict(),
        "template": "tunescope default (### Instruction / ### Response)" if default_template
        else "the base model's chat template",
        "precision": resolve_precision(config.precision, lm.device), "device": device,
        "steps": state.step, "final_loss": state.losses[-1],
        "final_loss_mean_last_10pct": sum(tail) / len(tail),
        "losses": state.losses, "tokens": state.tokens,
        "response_tokens": int(sum(state.response_tokens)),
        "seconds": round(state.seconds, 3),
        "tokens_per_second": state.tokens / state.seconds if state.seconds else None,
        "threads": torch.get_num_threads(),
        "versions": {"tunescope": __version__, "torch": torch.__version__,
                     "transformers": transformers.__version__, "peft": peft.__version__},
        "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _write_json(path: Path, value: dict) -> None:
    with fault("write", path):
        write_atomic(path, json.dumps(value, indent=2).encode())


def export_adapter(tuned: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Copy what a tuned variant needs to be re-made from its base into ``dest``: the LoRA
    adapter (``adapter_config.json``, ``adapter_model.safetensors``), the recipe and the chat
    template it was tuned with. This is how a tuned bundled model's files are made
    (:class:`tunescope.models.bundled.TunedBundledModel`); the adapter's base is recorded as
    the recipe's base spec (not a path of this machine)."""
    tuned, dest = Path(tuned), Path(dest)
    recipe = read_recipe(tuned)
    if recipe is None or not (tuned / "adapter" / "adapter_model.safetensors").is_file():
        raise DataError("not a finished LoRA tuning directory (no recipe or no adapter/)",
                        path=str(tuned))
    dest.mkdir(parents=True, exist_ok=True)
    config = json.loads((tuned / "adapter" / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = recipe["base"]["spec"]
    _write_json(dest / "adapter_config.json", config)
    shutil.copyfile(tuned / "adapter" / "adapter_model.safetensors",
                    dest / "adapter_model.safetensors")
    shutil.copyfile(tuned / RECIPE, dest / RECIPE)
    if (tuned / "chat_template.jinja").is_file():
        shutil.copyfile(tuned / "chat_template.jinja", dest / "chat_template.jinja")
    return dest
