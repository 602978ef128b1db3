"""Benchmark: test BLEU against wall-clock training time, nlpseq against JoeyNMT 2.3.0.

Multi30k de -> en, several time budgets and seeds, five lanes:

- ``nlpseq``: ``task=translation`` sized like JoeyNMT's matched config (the overrides of
  ``bench_translation.MATCHED``), nlpseq's own batching (length buckets);
- ``nlpseq_unbucketed``: the same with ``data.pool_batches=1`` (every batch a random draw,
  as JoeyNMT batches): splits the framework's speed from what batching buys;
- ``joeynmt_matched``: ``scripts/joeynmt/multi30k_gru.yaml``, the same model and training
  settings, the loss normalised per target token as nlpseq's;
- ``joeynmt_matched_torch_init``: the same with initialisers close to PyTorch's defaults,
  as nlpseq's model starts (``bench_joeynmt --init torch``), instead of JoeyNMT's xavier:
  splits what the set-up's initialisation does from what each tool learns per step;
- ``joeynmt_recommended``: ``scripts/joeynmt/multi30k_rnn_recommended.yaml``, JoeyNMT's own
  published recurrent recipe, adapted only in data paths, vocabulary and validation rate.

Every run trains for its budget (wall-clock from the first training step, validation
included: both tools validate every 200 steps), then decodes test_2016_flickr with beam 5
from its best validated checkpoint (chosen on val; the weights at the stop when no
validation ran yet). For JoeyNMT both its own test BLEU (its ``test`` command) and
sacrebleu's on its written output are kept. Runs go ``--parallel`` at a time, one thread
each; within each seed the lanes' order rotates, so no tool always starts first.

    OMP_NUM_THREADS=1 python scripts/bench_bleu_vs_time.py --data-dir DATA \
        --joey-python /path/to/joey/bin/python --out outputs/bench_bleu_vs_time \
        --budgets 150 600 --seeds 1 2 3

A run whose result.json exists is not rerun: an interrupted benchmark continues where it
stopped. Written under --out: LANE/b<budget>_s<seed>/ (each run), summary.json,
bleu_vs_time.md (mean +- std per lane and budget), bleu_vs_time.csv (test BLEU per lane and
budget) and bleu_vs_time.png (drawn from the CSV; ``--plot-from CSV`` redraws one).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench_joeynmt import validation_bleus
from bench_translation import MATCHED

HERE = Path(__file__).resolve().parent
LANES = ("nlpseq", "nlpseq_unbucketed", "joeynmt_matched", "joeynmt_matched_torch_init",
         "joeynmt_recommended")
LANE_OVERRIDES = {"nlpseq": [], "nlpseq_unbucketed": ["data.pool_batches=1"]}
JOEY_SETUPS = {"joeynmt_matched": ["--setup", "matched", "--normalization", "tokens"],
               "joeynmt_matched_torch_init": ["--setup", "matched", "--normalization", "tokens",
                                              "--init", "torch"],
               "joeynmt_recommended": ["--setup", "recommended"]}
_print_lock = threading.Lock()


def say(msg: str) -> None:
    with _print_lock:
        print(f"[bench_bleu_vs_time] {msg}", file=sys.stderr, flush=True)


def job_order(lanes: list[str], seeds: list[int], budgets: list[float]) -> list[tuple]:
    """(lane, seed, budget) jobs: the short budgets first (a cut-short benchmark still has
    every seed of them), and within a seed the lanes rotated by the seed's position."""
    jobs = []
    for budget in sorted(budgets):
        for i, seed in enumerate(seeds):
            shift = i % len(lanes)
            jobs += [(lane, seed, budget) for lane in lanes[shift:] + lanes[:shift]]
    return jobs


def run_logged(command: list[str], log_file: Path, env: dict) -> None:
    with log_file.open("a", encoding="utf-8") as log:
        log.write("+ " + " ".join(command) + "\n")
        log.flush()
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    if done.returncode:
        raise RuntimeError(f"{command[0]} failed (rc={done.returncode}); see {log_file}")


def hhmmss(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"00:{hours:02d}:{minutes:02d}:{secs:02d}"


def run_nlpseq(lane: str, seed: int, budget: float, run_dir: Path, env: dict) -> dict:
    bin_dir = Path(sys.executable).parent
    log_file = run_dir / "run.log"
    train_dir = run_dir / "train"
    run_logged([str(bin_dir / "nlpseq-train"), *MATCHED, *LANE_OVERRIDES[lane], f"seed={seed}",
                f"trainer.max_time={hhmmss(budget)}", "test=false",
                f"hydra.run.dir={train_dir}"], log_file, env)
    trained = json.loads((train_dir / "metrics.json").read_text())
    ckpts = train_dir / "checkpoints"
    tested = "best" if (ckpts / "best.ckpt").is_file() else "last"
    eval_dir = run_dir / "eval_beam5"
    run_logged([str(bin_dir / "nlpseq-eval"), f"ckpt_path={ckpts / f'{tested}.ckpt'}",
                "beam_size=5", f"hydra.run.dir={eval_dir}"], log_file, env)
    tested_metrics = json.loads((eval_dir / "metrics.json").read_text())
    return {"bleu_test_beam5": tested_metrics["test/bleu"],
            "tokens_per_s": trained["train/tokens_per_s"],
            "train_time_s": trained["train/time_s"], "params": trained["params"],
            "tested_ckpt": tested, "tested_ckpt_step": trained.get("train/best_step")}


def run_joeynmt(lane: str, seed: int, budget: float, run_dir: Path, env: dict,
                args) -> dict:
    run_logged([sys.executable, str(HERE / "bench_joeynmt.py"), *JOEY_SETUPS[lane],
                "--seed", str(seed), "--budget-s", str(budget), "--torch-threads", "1",
                "--joey-python", args.joey_python, "--data-dir", str(args.data_dir / "multi30k"),
                "--out", str(run_dir / "joeynmt")], run_dir / "run.log", env)
    joey = json.loads((run_dir / "joeynmt" / "result.json").read_text())
    recheck = joey.get("bleu_test_beam5_recheck")  # sacrebleu on its output, as nlpseq's
    return {"bleu_test_beam5": joey["bleu_test_beam5"] if recheck is None else recheck,
            "bleu_test_beam5_joeynmt": joey["bleu_test_beam5"],
            "tokens_per_s": joey["tokens_per_s"], "train_time_s": joey["train_wall_s"],
            "params": joey["total_params"], "steps": joey["steps"],
            "tested_ckpt": joey["tested_ckpt"], "tested_ckpt_step": joey["tested_ckpt_step"]}


def run_job(job: tuple, args, env: dict) -> dict | None:
    lane, seed, budget = job
    run_dir = args.out / lane / f"b{int(budget)}_s{seed}"
    result_file = run_dir / "result.json"
    if result_file.is_file():  # done before: its steps read again as numbers (JSON keys are text)
        return {**json.loads(result_file.read_text()),
                "val_bleu_at_steps": val_bleu_at_steps(run_dir, lane)}
    if run_dir.exists():  # an interrupted attempt: neither tool trains into an old run dir
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    say(f"start {lane} seed {seed} budget {budget:.0f} s")
    try:
        if lane in LANE_OVERRIDES:
            result = run_nlpseq(lane, seed, budget, run_dir, env)
        else:
            result = run_joeynmt(lane, seed, budget, run_dir, env, args)
    except (RuntimeError, OSError, KeyError, json.JSONDecodeError) as err:
        say(f"FAILED {lane} seed {seed} budget {budget:.0f} s: {err}")
        return None
    result = {"lane": lane, "seed": seed, "budget_s": budget, **result,
              "val_bleu_at_steps": val_bleu_at_steps(run_dir, lane)}
    result_file.write_text(json.dumps(result, indent=2) + "\n")
    say(f"done {lane} seed {seed} budget {budget:.0f} s: BLEU {result['bleu_test_beam5']:.2f}, "
        f"{result['tokens_per_s']:.0f} tokens/s")
    return result


EQUAL_STEPS = (200, 400)  # both tools validate every 200 steps in the first epoch


def val_bleu_at_steps(run_dir: Path, lane: str) -> dict[int, float]:
    """Greedy validation BLEU after EQUAL_STEPS training steps, from each tool's own log:
    learning per step, apart from speed. nlpseq logs 0-based steps (199 = after 200);
    JoeyNMT's k-th validation record is at step 200 k."""
    scores = {}
    if lane in LANE_OVERRIDES:
        metrics = run_dir / "train" / "csv" / "metrics.csv"
        if metrics.is_file():
            with metrics.open() as handle:
                for row in csv.DictReader(handle):
                    if row.get("val/bleu") and int(row["step"]) + 1 in EQUAL_STEPS:
                        scores[int(row["step"]) + 1] = float(row["val/bleu"])
    else:
        log = run_dir / "joeynmt" / "model" / "train.log"
        bleus = validation_bleus(log) if log.is_file() else []
        scores = {200 * (k + 1): b for k, b in enumerate(bleus) if 200 * (k + 1) in EQUAL_STEPS}
    return scores


def mean_std(values: list[float], digits: int = 2) -> str:
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}"


def summarize(results: list[dict], lanes: list[str], budgets: list[float]) -> str:
    """Markdown: per budget and lane, test BLEU and training tokens/s as mean ± std."""
    lines = ["| budget | lane | test BLEU, beam 5 (sacrebleu) | JoeyNMT's own test BLEU "
             "| training tokens/s | val BLEU after 200 / 400 steps | seeds |",
             "|---|---|---|---|---|---|---|"]
    for budget in sorted(budgets):
        for lane in lanes:
            rows = [r for r in results if r["lane"] == lane and r["budget_s"] == budget]
            own = [r["bleu_test_beam5_joeynmt"] for r in rows if "bleu_test_beam5_joeynmt" in r]
            at_steps = " / ".join(
                f"{statistics.mean(s[n] for s in found):.1f}" if (found := [
                    s for r in rows if n in (s := r.get("val_bleu_at_steps", {}))]) else "-"
                for n in EQUAL_STEPS)
            lines.append(
                f"| {budget:.0f} s | {lane} | {mean_std([r['bleu_test_beam5'] for r in rows])} "
                f"| {mean_std(own) if own else '-'} "
                f"| {mean_std([r['tokens_per_s'] for r in rows], digits=0)} | {at_steps} "
                f"| {' '.join(str(r['seed']) for r in sorted(rows, key=lambda r: r['seed']))} |")
    return "\n".join(lines) + "\n"


SUMMARY_FIELDS = ("lane", "budget_s", "bleu_mean", "bleu_std", "seeds")


def summary_rows(results: list[dict], lanes: list[str], budgets: list[float]) -> list[dict]:
    """Test BLEU (beam 5) per lane and budget: mean, std over seeds, how many seeds."""
    rows = []
    for lane in lanes:
        for budget in sorted(budgets):
            bleus = [r["bleu_test_beam5"] for r in results
                     if r["lane"] == lane and r["budget_s"] == budget]
            if bleus:
                rows.append({"lane": lane, "budget_s": budget,
                             "bleu_mean": round(statistics.mean(bleus), 2),
                             "bleu_std": round(statistics.stdev(bleus), 2) if len(bleus) > 1
                             else 0.0, "seeds": len(bleus)})
    return rows


def write_summary_csv(rows: list[dict], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=SUMMARY_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def read_summary_csv(path: Path) -> list[dict]:
    with path.open(newline="") as handle:
        return [{"lane": row["lane"], "budget_s": float(row["budget_s"]),
                 "bleu_mean": float(row["bleu_mean"]), "bleu_std": float(row["bleu_std"]),
                 "seeds": int(row["seeds"])} for row in csv.DictReader(handle)]


def plot(rows: list[dict], path: Path) -> None:
    """Mean test BLEU against the budget, one line per lane, ± one std over seeds."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say("matplotlib missing: no plot")
        return
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for lane in dict.fromkeys(row["lane"] for row in rows):
        points = sorted((r for r in rows if r["lane"] == lane), key=lambda r: r["budget_s"])
        ax.errorbar([r["budget_s"] for r in points], [r["bleu_mean"] for r in points],
                    yerr=[r["bleu_std"] for r in points], marker="o", capsize=3, label=lane)
    ax.set_xscale("log")
    ax.minorticks_off()
    ticks = sorted({r["budget_s"] for r in rows})
    ax.set_xticks(ticks, [f"{tick:.0f}" for tick in ticks])
    ax.set_xlabel("training wall-clock seconds (validation included)")
    ax.set_ylabel("test_2016_flickr BLEU, beam 5")
    ax.set_title("Multi30k de→en: BLEU against training time (mean ± std of seeds)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="a folder holding multi30k/")
    parser.add_argument("--joey-python", default="/tmp/joey/bin/python",
                        help="JoeyNMT's virtualenv python (see bench_joeynmt.install_commands)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench_bleu_vs_time"))
    parser.add_argument("--budgets", type=float, nargs="+", default=[150.0, 600.0, 1800.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--lanes", nargs="+", choices=LANES, default=list(LANES))
    parser.add_argument("--parallel", type=int, default=2, help="runs at a time, 1 thread each")
    parser.add_argument("--summarize-only", action="store_true",
                        help="run nothing: tabulate and plot the results already under --out")
    parser.add_argument("--plot-from", type=Path, metavar="CSV",
                        help="run nothing: draw CSV (a bleu_vs_time.csv this script wrote) "
                             "as the .png beside it")
    args = parser.parse_args(argv)
    if args.plot_from:
        plot(read_summary_csv(args.plot_from), args.plot_from.with_suffix(".png"))
        return
    if args.data_dir is None:
        parser.error("--data-dir is required (a folder holding multi30k/)")
    args.data_dir, args.out = args.data_dir.resolve(), args.out.resolve()
    if not (args.data_dir / "multi30k").is_dir():
        parser.error(f"no multi30k/ folder in {args.data_dir}")
    if set(args.lanes) & set(JOEY_SETUPS) and not Path(args.joey_python).is_file():
        from bench_joeynmt import install_commands
        parser.error(f"no JoeyNMT python at {args.joey_python}; make its virtualenv with\n  "
                     + "\n  ".join(install_commands()))
    env = {**os.environ, "NLPSEQ_DATA_DIR": str(args.data_dir), "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    jobs = job_order(args.lanes, args.seeds, args.budgets)
    if args.summarize_only:
        files = [args.out / lane / f"b{int(budget)}_s{seed}" / "result.json"
                 for lane, seed, budget in jobs]
        results = [{**json.loads(f.read_text()),
                    "val_bleu_at_steps": val_bleu_at_steps(f.parent, f.parent.parent.name)}
                   for f in files if f.is_file()]
    else:
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            results = [r for r in pool.map(lambda job: run_job(job, args, env), jobs) if r]
    table = summarize(results, args.lanes, args.budgets)
    (args.out / "summary.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "bleu_vs_time.md").write_text(table)
    rows = summary_rows(results, args.lanes, args.budgets)
    write_summary_csv(rows, args.out / "bleu_vs_time.csv")
    plot(rows, args.out / "bleu_vs_time.png")
    print(table)


if __name__ == "__main__":
    main()
