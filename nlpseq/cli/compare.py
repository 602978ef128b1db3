"""``nlpseq-report PATH [PATH ...]``: which cell, at what cost?

Reads every training run under the paths (a multirun directory, run directories, or
folders of them), groups the finished runs by cell and by every swept field, and writes
per task: the metric's mean ± std over seeds with parameters, training time, tokens/s,
peak memory and epochs to best, as Markdown (``report.md``, also printed) and CSV, plus
PNG plots (learning curves, metric against parameters, metric against training time).
Runs of different tasks get separate sections; failed and unfinished runs are listed.

    nlpseq-train -m experiment=sst2 encoder=rnn,lstm,gru seed=1,2,3
    nlpseq-report outputs/multirun/2026-11-27/10-00-00       # -> .../report/
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from nlpseq.cli.rundir import in_record_folder
from nlpseq.comparison import plots
from nlpseq.comparison.runs import Run, find_run_dirs, load_run
from nlpseq.comparison.summary import (
    by_task,
    group_runs,
    markdown_table,
    summary_rows,
    swept_fields,
    write_csv,
)
from nlpseq.errors import NlpseqError


def check_report_folder(out: Path) -> None:
    """Create ``out``; refuse, in one line, a path that is a file, cannot be created, or lies
    in a run's record (``checkpoints/``, ``.hydra/``, ...)."""
    inside = in_record_folder(out)
    if inside:
        raise NlpseqError(f"--out '{out}' is inside the record of the run {inside[0]}; pick "
                          "another folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise NlpseqError(f"cannot write the report into --out '{out}': "
                          f"{err.strerror or err}") from None


def build_report(paths: list[Path], out: Path) -> Path:
    """Write the report files into ``out``; return the Markdown report's path."""
    runs = [load_run(run_dir) for path in paths for run_dir in find_run_dirs(path)]
    finished = [run for run in runs if run.status == "finished"]
    if not finished:
        raise NlpseqError(f"no finished runs under {', '.join(map(str, paths))}: "
                          f"{_count_by_status(runs)}, none with metrics.json")
    check_report_folder(out)
    tasks = by_task(finished)
    lines = [f"# nlpseq comparison report\n\n{len(runs)} runs under "
             f"{', '.join(f'`{p}`' for p in paths)}: {_count_by_status(runs)}.\n"]
    if len(tasks) > 1:
        lines.append(f"Runs of {len(tasks)} tasks ({', '.join(tasks)}): each task has its own "
                     "section; their metrics are not compared with each other.\n")
    for task, task_runs in tasks.items():
        lines.append(task_section(task, task_runs, out))
    lines.append(unfinished_section(runs))
    report = out / "report.md"
    report.write_text("\n".join(line for line in lines if line))
    return report


def task_section(task: str, runs: list[Run], out: Path) -> str:
    rows = summary_rows(group_runs(runs))
    write_csv(out / f"{task}_summary.csv", rows)
    write_csv(out / f"{task}_runs.csv", [run_row(run) for run in runs])
    drawn = [plots.learning_curves(runs, out / f"{task}_learning_curves.png"),
             plots.metric_against(runs, "params", "parameters",
                                  out / f"{task}_metric_vs_params.png"),
             plots.metric_against(runs, "train/time_s", "training time (s)",
                                  out / f"{task}_metric_vs_time.png")]
    fields = swept_fields(runs)
    text = [f"## {task}: {runs[0].monitor} "
            f"({'higher' if runs[0].higher_is_better else 'lower'} is better)\n",
            f"{len(runs)} finished runs, grouped by cell"
            + (f" and {', '.join(fields)}" if fields else "")
            + "; mean ± std over the runs of a group (they differ only in seed).\n",
            markdown_table(rows)]
    text.extend(f"![{path.stem}]({path.name})" for path in drawn if path is not None)
    return "\n".join(text) + "\n"


def run_row(run: Run) -> dict[str, object]:
    row: dict[str, object] = {"run": str(run.path), "cell": run.cell,
                              "overrides": " ".join(f"{k}={v}" for k, v in
                                                    run.overrides.items())}
    row.update({key: value for key, value in (run.metrics or {}).items()
                if isinstance(value, (int, float))})
    return row


def unfinished_section(runs: list[Run]) -> str:
    others = [run for run in runs if run.status != "finished"]
    if not others:
        return ""
    lines = ["## Runs without metrics\n"]
    for run in others:
        why = f": {run.error}" if run.error else " (no metrics.json: killed or still running)"
        lines.append(f"- `{run.path}` {run.status}{why}")
    return "\n".join(lines) + "\n"


def _count_by_status(runs: list[Run]) -> str:
    counts = {s: sum(r.status == s for r in runs) for s in ("finished", "failed", "unfinished")}
    return ", ".join(f"{n} {status}" for status, n in counts.items() if n) or "no runs"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="nlpseq-report", description=__doc__.split("\n\n")[1].replace("\n", " "),
        epilog="Example: nlpseq-train -m experiment=sst2 encoder=rnn,lstm,gru seed=1,2,3 "
               "&& nlpseq-report outputs/multirun/DATE/TIME")
    parser.add_argument("paths", nargs="+", type=Path,
                        help="a multirun directory, run directories, or folders of them")
    parser.add_argument("--out", type=Path, default=None,
                        help="where the report goes (default: PATH/report for one path, "
                             "else outputs/report/DATE_TIME)")
    args = parser.parse_args(argv)
    out = args.out or (args.paths[0] / "report" if len(args.paths) == 1 else
                       Path("outputs/report") / time.strftime("%Y-%m-%d_%H-%M-%S"))
    try:
        report = build_report(args.paths, out)
    except NlpseqError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(report.read_text())
    print(f"Report written to {report} (CSV and PNG files beside it)")


if __name__ == "__main__":
    main()
