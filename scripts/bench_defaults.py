"""Benchmark: do the default settings serve a user's own small sentiment data?

A user with a few thousand labelled sentences runs ``nlpseq-train encoder=gru data=files
data.train_file=TRAIN data.test_file=TEST`` and nothing else. This script plays that user
on SST-2's whole sentences (rows of ``train.tsv`` no other row contains; see
``bench_transfer.py``), a drawn subset of ``--size`` of them as TRAIN and ``dev.tsv`` as
TEST, and compares, for each seed:

- ``defaults``: exactly that command (validation: the default 10 % held out of TRAIN);
- ``recipe``: ``experiment=sst2`` (the recipe tuned on the 67k SST-2 training phrases) on
  the same files, validation the same held-out 10 % (``data.validation_fraction=0.1
  data.holdout=rows``: the rows are whole sentences already).

Both choose their checkpoint (and stop early) on the held-out slice of TRAIN; TEST is read
once per run, at the end, and reported. Order alternates with the seed. Writes
``OUT/defaults.json`` (every run) and ``OUT/defaults.md`` (mean ± std per setting);
finished runs in OUT are read, not run again.

    python scripts/bench_defaults.py --data-dir DATA --out outputs/bench_defaults \
        --size 6000 --seeds 1 2 3 [--cell gru] [--extra trainer.max_epochs=20]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from pathlib import Path

from bench_transfer import read_rows, train, whole_sentences, write_tsv

SETTINGS = {
    "defaults": ["data=files"],
    "recipe": ["experiment=sst2", "data.validation_fraction=0.1", "data.holdout=rows"],
}


def summarize(results: list[dict], out: Path) -> str:
    """defaults.md: test accuracy mean ± std and training time per setting."""
    table = ["| setting | test acc % (mean ± std) | per seed | training s (median) |",
             "|---|---|---|---|"]
    for setting in SETTINGS:
        runs = [r for r in results if r["setting"] == setting]
        if not runs:
            continue
        accs = [100 * r["test_acc"] for r in runs]
        spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
        seconds = statistics.median(r["train_seconds"] for r in runs)
        table.append(f"| {setting} | {statistics.fmean(accs):.2f} ± {spread:.2f} | "
                     f"{' / '.join(f'{a:.2f}' for a in accs)} | {seconds:.0f} |")
    text = "\n".join(table) + "\n"
    (out / "defaults.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="holds sst2/train.tsv and sst2/dev.tsv")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench_defaults"))
    parser.add_argument("--size", type=int, default=6000, help="training sentences")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--subset-seed", type=int, default=0)
    parser.add_argument("--cell", default="gru", choices=["rnn", "lstm", "gru"])
    parser.add_argument("--extra", nargs="*", default=[],
                        help="overrides for the defaults runs only (a candidate default)")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS),
                        help="which settings to run (e.g. only defaults, for a candidate)")
    args = parser.parse_args()
    out = args.out.resolve()
    sentences = whole_sentences(read_rows(args.data_dir / "sst2" / "train.tsv"))
    if args.size > len(sentences):
        raise SystemExit(f"error: --size {args.size}: train.tsv has {len(sentences)} whole "
                         "sentences")
    random.Random(args.subset_seed).shuffle(sentences)
    train_file = write_tsv(out / "data" / f"train_{args.size}.tsv", sentences[:args.size])
    test_file = (args.data_dir / "sst2" / "dev.tsv").resolve()
    results = []
    for seed in args.seeds:
        order = args.settings if seed % 2 else list(reversed(args.settings))
        for setting in order:
            extra = args.extra if setting == "defaults" else []
            metrics = train(out / "runs" / f"{setting}_s{seed}",
                            [*SETTINGS[setting], f"encoder={args.cell}", f"seed={seed}",
                             f"data.train_file={train_file}", f"data.test_file={test_file}",
                             *extra], args.data_dir)
            results.append({"setting": setting, "seed": seed, "test_acc": metrics["test/acc"],
                            "train_seconds": metrics["train/time_s"],
                            "chosen_on": "10 % of the training sentences, held out"})
    (out / "defaults.json").write_text(json.dumps(results, indent=2) + "\n")
    print(summarize(results, out))


if __name__ == "__main__":
    main()
