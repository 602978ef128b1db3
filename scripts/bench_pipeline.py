"""Benchmark: what a real ``nlpseq-train`` run pays around the training step — length
bucketing, collation, DataLoader workers, per-step logging, progress bar and logger.

Each variant is a real ``nlpseq-train`` run (a process of its own, with the shipped
callbacks and logger) on the same texts (SST-2 training sentences of one label joined into
paragraphs, as in ``bench_lengths.py``; any of its regimes) for ``--batches`` training batches; its
``train/tokens_per_s`` from ``metrics.json`` counts real tokens over the time from the
start of the epoch to its last batch, so data loading and logging are in it. The variants
run in a rotating order, ``--rounds`` times; medians are reported with their ratio to the
defaults. Collation is also timed alone: iterating the training loader without training.

    NLPSEQ_DATA_DIR=../shared/data python scripts/bench_pipeline.py
    NLPSEQ_DATA_DIR=../shared/data python scripts/bench_pipeline.py --regime documents \
        --cell lstm --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_lengths import REGIMES, long_texts_whole, sst2_rows, write_texts
from bench_train_step import compose_train
from hydra.utils import instantiate

VARIANTS = {
    "defaults": [],
    "no length buckets": ["++data.pool_batches=1"],
    "1 loader worker": ["++data.num_workers=1"],
    "2 loader workers": ["++data.num_workers=2"],
    "log every step": ["trainer.log_every_n_steps=1"],
    "no progress bar, no logger": ["trainer.enable_progress_bar=false", "logger=none"],
}


def collation_ms(data_overrides: list[str], batches: int) -> tuple[float, float]:
    """Milliseconds per batch to iterate the training loader (sampling, padding, tensors),
    and the padding efficiency of those batches."""
    cfg = compose_train(data_overrides)
    datamodule = instantiate(cfg.data)
    datamodule.load(("train", "validation"))
    datamodule.encode(instantiate(cfg.tokenizer)(datamodule.train_texts()))
    loader = datamodule.train_dataloader()
    real = padded = 0
    started = time.perf_counter()
    for _, batch in zip(range(batches), loader, strict=False):
        real += int(batch["lengths"].sum())
        padded += batch["tokens"].numel()
    return 1000 * (time.perf_counter() - started) / batches, real / padded


def train_run(overrides: list[str], run_dir: Path) -> float:
    """One ``nlpseq-train`` run; its training tokens/s."""
    command = [sys.executable, "-m", "nlpseq.cli.train", *overrides, f"hydra.run.dir={run_dir}"]
    done = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    if done.returncode:
        raise SystemExit(f"nlpseq-train {' '.join(overrides)} failed: "
                         f"{done.stderr.strip().splitlines()[-1:]}")
    return json.loads((run_dir / "metrics.json").read_text())["train/tokens_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="config overrides for every run")
    parser.add_argument("--regime", choices=list(REGIMES), default="paragraphs")
    parser.add_argument("--cell", default="gru")
    parser.add_argument("--batches", type=int, default=40, help="training batches per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nlpseq-bench-pipeline-"))
    texts = write_texts(sst2_rows(Path(os.environ.get("NLPSEQ_DATA_DIR", "../shared/data"))),
                        args.regime, work)
    data = ["data=files", f"data.train_file={texts / 'train.tsv'}",
            f"data.validation_file={texts / 'validation.tsv'}", *long_texts_whole(args.regime)]
    common = [*data, f"encoder={args.cell}", "trainer.max_epochs=1",
              f"++trainer.limit_train_batches={args.batches}", "test=false", *args.overrides]

    collation = {name: collation_ms([*data, *variant], args.batches)
                 for name, variant in (("length buckets", []),
                                       ("no length buckets", ["++data.pool_batches=1"]))}
    for name, (ms, efficiency) in collation.items():
        print(f"collation, {name}: {ms:.2f} ms a batch, padding efficiency {efficiency:.3f}")

    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    names = list(VARIANTS)
    for round_index in range(args.rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            run_dir = work / f"run-{round_index}-{names.index(name)}"
            rates[name].append(train_run([*common, *VARIANTS[name]], run_dir))
            print(f"round {round_index}: {name}: {rates[name][-1]:,.0f} tokens/s", flush=True)
    base = statistics.median(rates["defaults"])
    print(f"\n| variant ({args.regime}, {args.cell}) | tokens/s (median) | vs defaults |")
    print("|---|---|---|")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"| {name} | {median:,.0f} | {median / base:.2f} |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "collation_ms_and_efficiency": collation,
                       "tokens_per_s": rates}, handle, indent=1)


if __name__ == "__main__":
    main()
