"""Group finished runs by cell and swept fields and summarise each group over its seeds.

"Which cell, at what cost?": per group the monitored metric (mean ± std over the runs,
which differ only in seed), parameters, training time and tokens/s (mean ± std), peak
memory and epochs to the best checkpoint — as rows for a Markdown table and a CSV file.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from nlpseq.comparison.runs import Run

NOT_A_FIELD = {"seed", "hydra.run.dir", "hydra.sweep.dir"}  # runs differing only here are repeats
# metrics.json keys of the runs a run started from (encoder.init_from, ...), shown in one column
INIT_FROM = {"init_from": "", "backward_init_from": "backward ", "decoder_init_from": "decoder "}
INIT_FROM_KEYS = {"encoder.init_from", "encoder.init_from_backward", "task.decoder.init_from"}
COST_COLUMNS = {  # metrics.json key -> column title
    "params": "params",
    "train/time_s": "train time (s)",
    "train/tokens_per_s": "train tokens/s",
    "train/steady_tokens_per_s": "steady tokens/s",
    "train/peak_rss_mib": "peak memory (MiB)",
    "train/best_epoch": "epochs to best",
}
# costs that vary from run to run: shown as mean ± std, so that disagreeing seeds show
SPREAD_COSTS = {"train/time_s", "train/tokens_per_s", "train/steady_tokens_per_s"}


@dataclass
class Group:
    """Runs with the same cell and the same value of every swept field."""

    key: dict[str, str]
    runs: list[Run]

    @property
    def metric(self) -> str:
        return self.runs[0].monitor

    def values(self, name: str) -> list[float]:
        return [float(r.metrics[name]) for r in self.runs
                if isinstance(r.metrics.get(name), (int, float))]


def swept_fields(runs: list[Run]) -> list[str]:
    """Overridden keys whose value differs between runs (the seed excluded)."""
    keys = sorted({key for run in runs for key in run.overrides} - NOT_A_FIELD - INIT_FROM_KEYS)
    return [key for key in keys
            if len({run.overrides.get(key) for run in runs}) > 1 and key != "encoder"]


def initialised_from(run: Run) -> str:
    """The runs ``run`` started from (``encoder.init_from`` and the like, set anywhere), or
    ``scratch``."""
    starts = []
    for key, side in INIT_FROM.items():
        if run.metrics.get(key):
            path = Path(str(run.metrics[key]))  # a run's checkpoints/*.ckpt: the run
            starts.append(side + str(path.parents[1] if path.parent.name == "checkpoints"
                                     else path))
    return "; ".join(starts) or "scratch"


def group_runs(runs: list[Run]) -> list[Group]:
    """Finished runs grouped by cell, what they started from (when any run started from
    another) and swept fields, best mean metric first."""
    fields = swept_fields(runs)
    starts = {run.path: initialised_from(run) for run in runs}
    transferred = set(starts.values()) != {"scratch"}
    groups: dict[tuple, Group] = {}
    for run in runs:
        key = {"cell": run.cell} | ({"initialised from": starts[run.path]} if transferred
                                     else {}) | {f: run.overrides.get(f, "") for f in fields}
        groups.setdefault(tuple(key.items()), Group(key, [])).runs.append(run)
    ordered = list(groups.values())
    ordered.sort(key=lambda g: statistics.fmean(g.values(g.metric) or [float("nan")]),
                 reverse=runs[0].higher_is_better)
    return ordered


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single run)."""
    if not values:
        return float("nan"), float("nan")
    if not all(math.isfinite(value) for value in values):  # a run that diverged (inf, nan)
        return sum(values) / len(values), float("nan")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def summary_rows(groups: list[Group]) -> list[dict[str, object]]:
    """One row per group: the grouping fields, runs, metric mean and std, then the costs
    (means over the group's runs; time and tokens/s with their std)."""
    rows = []
    for group in groups:
        metric = group.metric
        mean, std = mean_std(group.values(metric))
        row: dict[str, object] = dict(group.key)
        row["runs"] = len(group.runs)
        row[f"{metric} mean"], row[f"{metric} std"] = mean, std
        test_metric = "test/" + metric.split("/", 1)[-1]
        if group.values(test_metric) and test_metric != metric:
            row[f"{test_metric} mean"], row[f"{test_metric} std"] = mean_std(
                group.values(test_metric))
        for key, title in COST_COLUMNS.items():
            values = group.values(key)
            if key in SPREAD_COSTS:
                row[f"{title} mean"], row[f"{title} std"] = mean_std(values)
                continue
            mean = statistics.fmean(values) if values else None
            row[title] = round(mean) if key == "params" and mean is not None else mean
        rows.append(row)
    return rows


def by_task(runs: list[Run]) -> dict[str, list[Run]]:
    """Runs of different tasks are never compared with each other: one section per task."""
    tasks: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        tasks[run.task].append(run)
    return dict(tasks)


def markdown_table(rows: list[dict[str, object]]) -> str:
    """Rows as a Markdown table; a "<m> mean" column with its "<m> std" shows as "mean ± std"."""
    if not rows:
        return ""
    columns = list(rows[0])
    paired = {c[:-len(" mean")] for c in columns
              if c.endswith(" mean") and c[:-len(" mean")] + " std" in columns}
    shown = [c for c in columns if not (c.endswith(" std") and c[:-len(" std")] in paired)]
    titles = [f"{c[:-len(' mean')]} (mean ± std)" if c.endswith(" mean") and
              c[:-len(" mean")] in paired else c for c in shown]
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    for row in rows:
        cells = []
        for column in shown:
            cell = _format(row.get(column))
            if column.endswith(" mean") and column[:-len(" mean")] in paired:
                cell += f" ± {_format(row.get(column[:-len(' mean')] + ' std'))}"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _format(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):  # missing or nan
        return "–"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
