"""The terminal summary of a study: analyses x models, each cell the analysis' headline
numbers (from its Result's summary) and the number of degenerate figures it flags, failed jobs
with their reason."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from tunescope.result import Result, flags

HEADLINES: dict[str, tuple[tuple[str, str], ...]] = {
    "next_token_predictions": (("mean_top1_probability", "top-1 p"),),
    "prediction_consistency": (("macro_consistency", "consistency"),
                               ("macro_accuracy", "accuracy")),
    "representation_consistency": (("mean_auc_all_layers", "mean AUC"),
                                   ("lexical_auc", "lexical AUC")),
    "downstream_consistency": (("probe_consistency", "probe cons."),
                               ("probe_kappa", "probe kappa"),
                               ("zero_shot_calibrated_kappa", "0-shot cal. kappa")),
    "attention_knockout": (("subject_strongest_change", "subject %"),
                           ("last_strongest_change", "last %")),
    "extraction_rate": (("attn_out_max_rate", "attn max"), ("mlp_out_max_rate", "mlp max")),
    "subject_enrichment": (("last_subject_token_best_median_rank", "subj. rank"),
                           ("last_token_best_median_rank", "last rank")),
    "attribution": (("mean_instruction_score", "instr. score"),),
    "attention_heads": (("n_knowledge_pairs", "pairs"), ("heads_with_knowledge", "heads")),
    "ffn_concepts": (("mean_top10_variance", "top-10 var."),),
}
"""(summary entry, short label) shown per analysis; other analyses show their first two
numbers under their own names."""


def headline(analysis: str, summary: dict) -> list[tuple[str, object]]:
    """The (label, value) pairs shown for one Result's summary."""
    names = HEADLINES.get(analysis)
    if names is None:
        names = [(k, k) for k, v in summary.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)][:2]
    return [(label, summary[n]) for n, label in names if n in summary]


def _number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def summary_table(models: list[str], analyses: list[str], results: dict[str, dict[str, Result]],
                  records: list[dict]) -> Table:
    """A rich table: one row per analysis, one column per model (study order)."""
    failed = {(r["model"], r["analysis"]): r.get("error") or "failed"
              for r in records if r["status"] == "failed"}
    table = Table(title="study summary (headline numbers)")
    table.add_column("analysis")
    for key in models:
        table.add_column(key)
    for analysis in analyses:
        cells = []
        for key in models:
            result = results.get(analysis, {}).get(key)
            if result is not None:
                lines = [f"{n} {_number(v)}" for n, v in headline(analysis, result.summary)]
                n_flags = len(flags(result))
                if n_flags:
                    lines.append(f"[yellow]{n_flags} flag(s): see the report[/yellow]")
                cells.append("\n".join(lines) or "done")
            elif (key, analysis) in failed:
                message = failed[(key, analysis)]
                cells.append(f"[red]failed[/red]: {escape(message[:80])}")
            else:
                cells.append("-")
        table.add_row(analysis, *cells)
    return table
