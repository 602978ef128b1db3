"""How far back can each cell remember? Train RNN, LSTM and GRU on a long-range probe over
a sweep of sequence lengths and plot the test score against the length, chance drawn.

Every run is a normal ``nlpseq-train experiment=<probe>`` run (its own run directory under
``--out``, skipped when its metrics.json exists, so an interrupted sweep picks up where it
stopped) with the gradient-flow callback on; ``nlpseq-inspect`` then measures the trained
model's curve on a test batch, so the plots also show ||dL/dh_t|| against the distance from
the loss at the first training step and after training.

    python -m nlpseq.study.long_range --probe adding --lengths 25 50 100 200
    python -m nlpseq.study.long_range --probe first_token --lengths 10 50 100 200 --jobs 2 \\
        -- trainer.max_epochs=10
    python -m nlpseq.study.long_range --probe adding --lengths 25 50 100 200 --collect-only

Writes into ``--out`` (default outputs/long_range/<probe>): results.csv, results.md,
<probe>_score_by_length.png and <probe>_gradient_flow.png.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CELLS = ("rnn", "lstm", "gru")
SCORES = {"adding": ("mse", "test MSE (lower is better)"),
          "copy": ("acc", "test accuracy on the recalled symbols"),
          "first_token": ("acc", "test accuracy")}


def run_one(probe: str, cell: str, length: int, out: Path, threads: int,
            overrides: list[str]) -> Path:
    """Train one cell at one length (unless its run directory holds metrics.json), then
    measure the trained model with nlpseq-inspect (unless that was done)."""
    run_dir = out / f"{cell}_T{length}"
    environment = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    if not (run_dir / "metrics.json").is_file():
        train(run_dir, probe, cell, length, environment, overrides)
    if (run_dir / "metrics.json").is_file() and not (
            run_dir / "inspect" / "gradient_flow.json").is_file():
        with open(run_dir / "inspect.log", "w") as log:  # the trained model's gradient curve
            subprocess.run([*command_of("inspect_cells"), f"ckpt_path={run_dir}",
                            "split=test", "max_batches=1", "heatmaps=false",
                            f"hydra.run.dir={run_dir / 'inspect'}"],
                           env=environment, stdout=log, stderr=subprocess.STDOUT)
    return run_dir


def command_of(module: str) -> list[str]:
    """An nlpseq command in this Python (no PATH needed): ``nlpseq-train`` is ``train``."""
    return [sys.executable, "-m", f"nlpseq.cli.{module}"]


def train(run_dir: Path, probe: str, cell: str, length: int, environment: dict,
          overrides: list[str]) -> None:
    command = [*command_of("train"), f"experiment={probe}", f"encoder={cell}",
               f"data.length={length}",
               "callbacks=diagnostics", "callbacks.gradient_flow.every_n_steps=200",
               "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
               f"hydra.run.dir={run_dir}", *overrides]
    if (run_dir / "checkpoints" / "last.ckpt").is_file():
        command.append("resume=true")  # an interrupted run continues where it stopped
    print("$", " ".join(command), flush=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "stdout.log", "w") as log:
        result = subprocess.run(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    status = "done" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
    print(f"{cell} T={length}: {status}; log in {run_dir / 'stdout.log'}", flush=True)


def collect(probe: str, run_dir: Path, cell: str, length: int) -> dict | None:
    """One row of the results table: the test score, chance, steps, the gradient ratio
    ||dL/dh_1|| / ||dL/dh_T|| at the first training step and of the trained model, and how
    often the trained model's keep gate (LSTM forget, GRU update) is past 0.9 / below 0.1
    on a test batch."""
    metrics_file = run_dir / "metrics.json"
    if not metrics_file.is_file():
        return None
    metrics = json.loads(metrics_file.read_text())
    key = SCORES[probe][0]
    row = {"cell": cell, "length": length, key: metrics[f"test/{key}"],
           "chance": metrics["test/chance"], "best_step": metrics.get("train/best_step"),
           "epochs": metrics.get("train/epochs"), "time_s": metrics.get("train/time_s")}
    flow_file = run_dir / "gradient_flow.jsonl"
    if flow_file.is_file():
        records = [json.loads(line) for line in flow_file.read_text().splitlines() if line]
        row["grad_ratio_first_step"] = records[0]["first_over_last"]
        row["curve_first_step"] = records[0]["norm_by_distance"]
    trained_file = run_dir / "inspect" / "gradient_flow.json"
    if trained_file.is_file():
        trained = json.loads(trained_file.read_text())
        row["grad_ratio_trained"] = trained["first_over_last"]
        row["curve_trained"] = trained["norm_by_distance"]
    saturation_file = run_dir / "inspect" / "saturation_test.json"
    if saturation_file.is_file():  # the gate that keeps the state: LSTM forget, GRU update
        for key, values in json.loads(saturation_file.read_text()).items():
            if key.endswith(("/forget", "/update")):
                row["keep_gate_above_0.9"] = values["above_0.9"]
                row["keep_gate_below_0.1"] = values["below_0.1"]
    return row


def write_tables(rows: list[dict], out: Path) -> None:
    columns = [c for c in dict.fromkeys(k for row in rows for k in row)
               if not c.startswith("curve_")]
    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_format(row.get(c)) for c in columns) + " |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _format(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-2 or abs(value) >= 1e4 else f"{value:.4f}"
    return "" if value is None else str(value)


def plot(probe: str, rows: list[dict], out: Path) -> list[Path]:
    """Score against length per cell with the chance level, and the gradient-flow curves
    of the longest length at the first training step (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key, label = SCORES[probe]
    written = []
    figure, axis = plt.subplots(figsize=(6, 4))
    for cell in CELLS:
        points = sorted((r["length"], r[key]) for r in rows if r["cell"] == cell)
        if points:
            axis.plot(*zip(*points, strict=True), marker="o", label=cell)
    axis.axhline(rows[0]["chance"], color="grey", linestyle="--",
                 label="chance (answer 1)" if probe == "adding" else "chance")
    axis.set(xlabel="sequence length T", ylabel=label, title=f"{probe}: score by length")
    axis.set_xscale("log")
    lengths = sorted({r["length"] for r in rows})
    axis.set_xticks(lengths, [str(length) for length in lengths])
    axis.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    if probe == "adding":
        axis.set_yscale("log")
    axis.legend()
    figure.tight_layout()
    written.append(out / f"{probe}_score_by_length.png")
    figure.savefig(written[-1], dpi=120)
    plt.close(figure)

    longest = max(r["length"] for r in rows)
    figure, axis = plt.subplots(figsize=(6, 4))
    colours = dict(zip(CELLS, ("tab:blue", "tab:orange", "tab:green"), strict=True))
    for row in rows:
        for key, style, when in (("curve_first_step", ":", "first step"),
                                 ("curve_trained", "-", "trained")):
            curve = row.get(key)
            if row["length"] == longest and curve:
                positive = [(k, v / curve[0]) for k, v in enumerate(curve) if v > 0]
                axis.plot(*zip(*positive, strict=True), style, color=colours[row["cell"]],
                          label=f"{row['cell']}, {when}")
    axis.set(xlabel="steps k back from the loss (a curve ends where float32 underflows)",
             ylabel="||dL/dh_(T-k)|| / ||dL/dh_T||", yscale="log",
             title=f"{probe}, T={longest}: gradient reaching each hidden state")
    axis.legend()
    figure.tight_layout()
    written.append(out / f"{probe}_gradient_flow.png")
    figure.savefig(written[-1], dpi=120)
    plt.close(figure)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probe", choices=sorted(SCORES), required=True)
    parser.add_argument("--lengths", type=int, nargs="+", required=True)
    parser.add_argument("--cells", nargs="+", choices=CELLS, default=list(CELLS))
    parser.add_argument("--out", type=Path, help="default: outputs/long_range/<probe>")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs side by side, each with cores/jobs threads")
    parser.add_argument("--threads", type=int, help="torch threads per run (default cores/jobs)")
    parser.add_argument("--collect-only", action="store_true",
                        help="only gather finished runs into the tables and plots")
    parser.add_argument("overrides", nargs="*", help="nlpseq-train overrides after --")
    args = parser.parse_args()
    out = args.out or Path("outputs/long_range") / args.probe
    out.mkdir(parents=True, exist_ok=True)
    grid = [(cell, length) for length in sorted(args.lengths) for cell in args.cells]
    if not args.collect_only:
        threads = args.threads or max(1, (os.cpu_count() or 1) // args.jobs)
        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(lambda job: run_one(args.probe, *job, out, threads, args.overrides),
                          grid))
    rows = [row for cell, length in grid
            if (row := collect(args.probe, out / f"{cell}_T{length}", cell, length))]
    if not rows:
        sys.exit(f"error: no finished runs under {out}")
    write_tables(rows, out)
    for path in plot(args.probe, rows, out):
        print(f"wrote {path}")
    missing = len(grid) - len(rows)
    if missing:
        print(f"{missing} run(s) of the grid have no metrics.json (failed or not run)")


if __name__ == "__main__":
    main()
