"""The report page: study, models, run, then one section per analysis; and its atomic write.

The page is one self-contained HTML file: inline CSS, inline SVG figures, no scripts, no
external resources (a Content-Security-Policy forbids them too), every string from the study,
the models and the Results escaped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from tunescope.common.atomic import make_temp_file
from tunescope.errors import OutputError
from tunescope.report import figures
from tunescope.report.markup import esc, heading, key_value_table, note, table
from tunescope.report.sections import Context, anchor, render_section
from tunescope.report.variants import ANCHOR as VARIANTS
from tunescope.report.variants import variants_section
from tunescope.result import Result

MODEL_COLUMNS = ("key", "role", "name", "family", "source", "dtype", "chat template", "layers",
                 "d_model", "parameters", "spec")

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #222; background: #fafafa; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 1.2rem 2rem 4rem; background: #fff; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2rem;
margin-top: 2.4rem; } h3 { margin-top: 1.4rem; } h4 { margin: 0.6rem 0 0.3rem; }
.subtitle { color: #555; margin-top: 0; }
nav ol { columns: 2; font-size: 0.92rem; }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.85rem; }
pre.spec { background: #f4f4f4; padding: 0.8rem; overflow: auto; max-height: 26rem; }
.table-wrap { overflow-x: auto; margin: 0.4rem 0 0.8rem; }
table { border-collapse: collapse; font-size: 0.82rem; }
th, td { border: 1px solid #ddd; padding: 0.18rem 0.45rem; text-align: left;
         vertical-align: top; max-width: 32rem; overflow-wrap: anywhere; }
thead th { background: #f0f0f0; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv th { background: #f7f7f7; }
figure { margin: 1rem 0 1.4rem; }
figure.plot svg { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 0.86rem; color: #444; margin-top: 0.35rem; max-width: 62rem; }
.note { color: #555; font-style: italic; }
.warning { background: #fff4e5; border-left: 4px solid #e6550d; padding: 0.45rem 0.7rem;
           font-style: normal; color: #5a2d00; }
.intro { color: #333; } .analysis-name { color: #777; font-size: 0.85rem; margin: 0; }
details { margin: 0.4rem 0 0.8rem; } summary { cursor: pointer; color: #1f4e79; }
.more { font-size: 0.8rem; color: #777; }
.heatmap-example { margin-bottom: 0.9rem; }
.heatmap-model { padding: 0.3rem 0.6rem; margin: 0.3rem 0; background: #fcfcfc; }
.heatmap-title { font-weight: 600; font-family: system-ui, sans-serif; font-size: 0.82rem; }
.token-heatmap { font-size: 0.82rem; }
.response { font-size: 0.8rem; color: #333; white-space: pre-wrap; margin-top: 0.25rem;
            overflow-wrap: anywhere; }
.response-label { font-weight: 600; }
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("tunescope")
    except PackageNotFoundError:
        return "unknown"


def _study_analyses(study: dict) -> list[str]:
    """Analysis names in the order the study spec lists them (a list of names or of dicts with
    ``name``, or a mapping name -> config)."""
    spec = study.get("analyses") if isinstance(study, dict) else None
    if isinstance(spec, dict):
        return [str(k) for k in spec]
    if isinstance(spec, (list, tuple)):
        return [str(a.get("name")) if isinstance(a, dict) else str(a) for a in spec]
    return []


def analysis_order(study: dict, results: dict, comparisons: dict) -> list[str]:
    """Every analysis to show: the study's order first, then the registry's, then the rest."""
    from tunescope.analyses import REGISTRY
    present = set(results) | {k for k, v in comparisons.items() if v is not None and len(v)}
    order = [a for a in _study_analyses(study) if a in present]
    order += [a for a in REGISTRY if a in present and a not in order]
    order += [a for a in [*results, *comparisons] if a in present and a not in order]
    return order


def _model_row(m: dict) -> dict:
    meta = m.get("metadata") or {}
    return {"key": m.get("key"), "role": m.get("role"), "name": meta.get("name"),
            "family": meta.get("family"), "source": meta.get("source"),
            "dtype": meta.get("dtype"),
            "chat template": meta.get("chat_template", meta.get("has_chat_template")),
            "layers": meta.get("n_layers"), "d_model": meta.get("d_model"),
            "parameters": meta.get("n_params"), "spec": m.get("spec")}


def family_warnings(models: list[dict]) -> list[str]:
    """One line per tuned model whose family differs from the base model's."""
    base = next((m for m in models if m.get("role") == "base"), None)
    if base is None:
        return []
    fam = (base.get("metadata") or {}).get("family")
    out = []
    for m in models:
        other = (m.get("metadata") or {}).get("family")
        if m.get("role") == "tuned" and fam and other and other != fam:
            out.append(f"Different families: compare metrics, not weights. Base {base['key']} is "
                       f"'{fam}', tuned {m['key']} is '{other}': per-model analyses and their "
                       f"metrics compare; weight-to-weight and per-unit comparisons (joined "
                       f"heads, principal angles) do not.")
    return out


def _models_section(models: list[dict]) -> str:
    parts = [heading(2, "Models")]
    if not models:
        return "".join(parts + [note("The study lists no models.")])
    parts += [note(w, "warning") for w in family_warnings(models)]
    parts.append(table(pd.DataFrame([_model_row(m) for m in models]), list(MODEL_COLUMNS)))
    return f'<section id="models">{"".join(parts)}</section>'


def _study_section(study: dict) -> str:
    text = json.dumps(study, indent=2, default=str, ensure_ascii=False, sort_keys=False)
    return (f'<section id="study">{heading(2, "Study")}'
            f'{note("The resolved study specification, as run.")}'
            f'<pre class="spec">{esc(text)}</pre></section>')


def _run_section(run_info: dict | None) -> str:
    if not run_info:
        return ""
    parts = [heading(2, "Run")]
    plain = [(k, v) for k, v in run_info.items() if k != "jobs"]
    if plain:
        parts.append(key_value_table(plain))
    jobs = [j for j in run_info.get("jobs") or [] if isinstance(j, dict)]
    if jobs:
        frame = pd.DataFrame(jobs)
        if {"model", "analysis", "status"} <= set(frame.columns):
            cell = frame["status"].astype(str)
            if "analysis_s" in frame:
                cell = cell + [f" ({s:.3g} s)" if isinstance(s, (int, float)) and s == s else ""
                               for s in frame["analysis_s"]]
            grid = (frame.assign(cell=cell).drop_duplicates(["model", "analysis"], keep="last")
                    .pivot(index="analysis", columns="model", values="cell")
                    .reindex(index=list(dict.fromkeys(frame["analysis"])),
                             columns=list(dict.fromkeys(frame["model"]))).reset_index())
            parts.append(note("Job status (and analysis time) per analysis and model."))
            parts.append(table(grid.fillna("–"), max_rows=1000))
        else:
            parts.append(table(frame, max_rows=1000))
    return f'<section id="run">{"".join(parts)}</section>'


def _statuses(run_info: dict | None, analysis: str) -> dict[str, str]:
    out = {}
    for job in (run_info or {}).get("jobs") or []:
        if isinstance(job, dict) and job.get("analysis") == analysis and "model" in job:
            out[str(job["model"])] = str(job.get("status", ""))
    return out


def _ordered_results(models: list[dict], per_model: dict[str, Result]) -> dict[str, Result]:
    """Results in study order; models missing from the study's list come last."""
    keys = [m["key"] for m in models if m["key"] in per_model]
    keys += [k for k in per_model if k not in keys]
    return {k: per_model[k] for k in keys}


def render_report(study: dict, models: list[dict], results: dict[str, dict[str, Result]],
                  comparisons: dict[str, pd.DataFrame], run_info: dict | None = None,
                  variants: dict[str, pd.DataFrame] | None = None) -> str:
    """The report as one self-contained HTML document (a string).

    Args:
        study: the resolved study spec as a plain dict (shown as JSON).
        models: ``[{"key", "role", "spec", "metadata"}]`` in study order.
        results: ``{analysis: {model key: Result}}``; analyses and models may be missing.
        comparisons: ``{analysis: DataFrame ["model", *compare.COLUMNS]}``.
        run_info: ``{"wall_s", "jobs": [{"model", "analysis", "status", "analysis_s"}], ...}``.
        variants: ``{analysis: DataFrame ["model", "reference", *compare.COLUMNS]}``, the tuned
            models against each other (:func:`tunescope.compare.compare_variants`).
    """
    from tunescope.analyses import REGISTRY

    models = [dict(m, key=str(m.get("key"))) for m in models]
    extra = sorted({k for per in results.values() for k in per} - {m["key"] for m in models})
    all_models = models + [{"key": k, "role": "?", "spec": "", "metadata": {}} for k in extra]
    colors = figures.palette([(m["key"], m.get("role", "")) for m in all_models])
    base = [m["key"] for m in models if m.get("role") == "base"]
    tuned = [m["key"] for m in models if m.get("role") == "tuned"]
    order = analysis_order(study, results, comparisons)
    sections = []
    with figures.style():
        for name in order:
            ctx = Context(name, _ordered_results(models, results.get(name) or {}), all_models,
                          comparisons.get(name, pd.DataFrame()), colors,
                          _statuses(run_info, name))
            description = REGISTRY[name].description if name in REGISTRY else ""
            sections.append(render_section(ctx, description))
    side_by_side = variants_section(models, comparisons, variants)
    toc = "".join(f'<li><a href="#{esc(anchor(n))}">{esc(n)}</a></li>' for n in order)
    if side_by_side:
        toc = f'<li><a href="#{VARIANTS}">Tuned variants side by side</a></li>' + toc
    subtitle = (f"base: {', '.join(base) or '–'} · tuned: {', '.join(tuned) or '–'} · "
                f"tunescope {_version()}")
    body = (f"<main><h1>tunescope report</h1><p class=\"subtitle\">{esc(subtitle)}</p>"
            f'<nav>{heading(2, "Contents")}<ol><li><a href="#study">Study</a></li>'
            f'<li><a href="#models">Models</a></li>{toc}</ol></nav>'
            f"{_study_section(study)}{_models_section(models)}{_run_section(run_info)}"
            f"{side_by_side}"
            f"{''.join(sections)}</main>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc('tunescope report: ' + ' vs '.join(base + tuned))}</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>\n")


def write_report(path, study: dict, models: list[dict], results: dict[str, dict[str, Result]],
                 comparisons: dict[str, pd.DataFrame], run_info: dict | None = None,
                 variants: dict[str, pd.DataFrame] | None = None) -> Path:
    """Render the report and write it to ``path`` atomically: a temporary file in the same
    directory, then ``os.replace``; a reader sees the old report or the new one, never half.
    Raises :class:`OutputError` (leaving no partial file) when the location is not writable."""
    target = Path(path)
    text = render_report(study, models, results, comparisons, run_info, variants)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = make_temp_file(target.parent, target.name)  # the umask's mode
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    except OSError as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write report to {target}: {e.strerror or e}") from None
    return target
