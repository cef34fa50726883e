"""The C3 section (docs/methods.md#c3): downstream consistency on perturbed task inputs."""

from __future__ import annotations

from tunescope.report import figures
from tunescope.report.sections.base import Context, model_tables, plot, section


@section("downstream_consistency", "C3 · Downstream consistency (perturbed task inputs)")
def downstream_consistency(ctx: Context) -> list[str]:
    from tunescope.analyses.downstream_consistency import constant_predictors

    metrics = ctx.tables("metrics")
    constant = {key: constant_predictors(t) for key, t in ctx.tables("predictions").items()}
    modes = list(dict.fromkeys(m for t in metrics.values() for m in t["mode"]))

    def title(mode: str) -> str:
        which = [key for key, labels in constant.items() if mode in labels]
        return f"{mode} (constant: {', '.join(which)})" if which else mode

    panels: dict[str, list] = {"consistency": [], "kappa": []}
    for mode in modes:
        kinds = list(dict.fromkeys(k for t in metrics.values()
                                   for k in t.loc[t["mode"] == mode, "kind"]))
        for metric, per_mode in panels.items():
            per_model = {}
            for key, t in metrics.items():
                if metric not in t:
                    continue
                by = t[t["mode"] == mode].set_index("kind")[metric]
                per_model[key] = [float(by.get(k, float("nan"))) for k in kinds]
            per_mode.append((title(mode), kinds, per_model))
    marked = [f"{key}: {mode} (every original input '{label}')"
              for key, labels in constant.items() for mode, label in labels.items()]
    constant_text = (" Constant predictors, marked in the panel titles: " + "; ".join(marked)
                     + ". Their consistency is high by construction (1, or the share of "
                     "perturbed inputs given the one label) and says nothing about robustness; "
                     "their kappa is 0 or undefined (no bar)." if marked else "")
    modes_text = ("one panel per prediction mode (probe: logistic regression on frozen "
                  "representations; zero_shot: label words scored by log-likelihood; "
                  "zero_shot_calibrated: the same scores after content-free calibration)")
    parts = [plot(
        figures.grouped_bars(panels["consistency"], ctx.colors, "consistency", ylim=(0, 1.02)),
        "Downstream consistency per perturbation kind (x axis; 'all' pools every kind), one bar "
        f"per model, {modes_text}. A bar is the share of (original, perturbed) inputs given the "
        "same label; 1 = the perturbation never changes the prediction. Accuracies are in the "
        "table below." + constant_text)]
    parts.append(plot(
        figures.grouped_bars(panels["kappa"], ctx.colors, "Cohen's kappa", ylim=(-1.02, 1.02),
                             reference=0.0),
        "Cohen's kappa between the original and the perturbed predictions, per perturbation "
        f"kind, one bar per model, {modes_text}: consistency corrected for the agreement that "
        "chance would give with the same label frequencies. 1 = perfect agreement, 0 (dotted) = "
        "chance level; no bar where it is undefined (both prediction lists one and the same "
        "label)." + constant_text))
    columns = [c for c in ("mode", "kind", "accuracy_original", "accuracy_perturbed",
                           "consistency", "kappa", "n_pairs")
               if any(c in t for t in metrics.values())]  # kappa: not in older results
    parts.append(model_tables(ctx, "metrics", columns,
                              title="Accuracy, consistency and kappa per mode and perturbation "
                                    "kind"))
    parts.append(model_tables(ctx, "calibration",
                              title="Content-free calibration: label scores of each "
                                    "content-free input (zero_shot_calibrated)"))
    return parts
