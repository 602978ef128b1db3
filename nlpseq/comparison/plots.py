"""The comparison report's PNG plots, one colour per cell: learning curves of every run,
the metric against parameters, and the metric against training time."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402

from nlpseq.comparison.runs import Run  # noqa: E402

COLOURS = {"rnn": "tab:red", "gru": "tab:green", "lstm": "tab:blue"}


def colour(cell: str) -> str:
    return COLOURS.get(cell, "tab:gray")


def learning_curves(runs: list[Run], path: Path) -> Path | None:
    """The monitored validation metric against the training step, one line per run."""
    drawn = [run for run in runs if run.curve]
    if not drawn:
        return None
    figure, axes = plt.subplots(figsize=(7, 4.5))
    labelled = set()
    for run in drawn:
        steps, values = zip(*run.curve, strict=True)
        label = run.cell if run.cell not in labelled else None
        labelled.add(run.cell)
        axes.plot(steps, values, color=colour(run.cell), alpha=0.8, label=label)
    axes.set(xlabel="training step", ylabel=drawn[0].monitor,
             title=f"{drawn[0].task}: {drawn[0].monitor} of every run at each validation")
    axes.legend(title="cell")
    axes.grid(alpha=0.3)
    return _save(figure, path)


def metric_against(runs: list[Run], cost: str, label: str, path: Path) -> Path | None:
    """One point per run: its final monitored metric against a cost from metrics.json."""
    points = [run for run in runs
              if isinstance(run.metrics.get(cost), (int, float)) and run.monitor in run.metrics]
    if not points:
        return None
    figure, axes = plt.subplots(figsize=(6, 4.5))
    labelled = set()
    for run in points:
        label_once = run.cell if run.cell not in labelled else None
        labelled.add(run.cell)
        axes.scatter(run.metrics[cost], run.metrics[run.monitor], color=colour(run.cell),
                     label=label_once, s=40, alpha=0.8)
    axes.set(xlabel=label, ylabel=points[0].monitor,
             title=f"{points[0].task}: {points[0].monitor} against {label}")
    axes.legend(title="cell")
    axes.grid(alpha=0.3)
    return _save(figure, path)


def _save(figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
