"""Benchmark: what a pretrained language model gives a sentiment classifier, by data size.

The protocol of Dai & Le 2015 and ULMFiT (Howard & Ruder 2018) on SST-2, with nothing but
SST-2's own text:

1. Whole sentences. SST-2's ``train.tsv`` mixes the training sentences with every phrase of
   their parse trees; a *whole sentence* is a row that no other row contains. From them,
   nested subsets of ``--sizes`` sentences are drawn once (``--subset-seed``), and a
   validation slice of ``--validation`` other whole sentences chooses every checkpoint.
   ``dev.tsv`` is read once per run, at the end, and reported.
2. Pretraining. ``experiment=sst2_lm`` trains a language model on the text of every row of
   ``train.tsv`` (labels unused; dev is never read); ``--backward`` adds the same model
   reading right to left (``data.reverse=true``).
3. Fine-tuning. For each size and seed, ``experiment=sst2_transfer`` from the language
   model(s) (every layer trained from the first step at one learning rate; ULMFiT's
   gradual unfreezing with ``--transfer-extra``), and the same recipe from scratch: the
   same cell, sizes and embedding size, its own tokenizer.

``--sizes all`` adds the full training set: the shipped ``data=sst2`` protocol (5 % of the
whole sentences held out with the run's seed, with every row they contain, choose the
checkpoints; dev reported once), the same two starts.

Writes ``OUT/transfer.json`` (every run's dev accuracy), ``OUT/transfer.md`` (mean ± std
over seeds per size) and ``OUT/transfer.png`` (dev accuracy against training sentences).
Runs already finished in OUT are read, not run again. On one thread of a busy 2-core CPU
a language model took 27-40 minutes (4 epochs), a run on 1,000 sentences about a minute,
on 5,000 a few minutes, on the full training set 15-20 minutes.

    python scripts/bench_transfer.py --data-dir DATA --out outputs/bench_transfer \
        --sizes 1000 2000 5000 --seeds 1 2 3 --extra trainer.max_epochs=30 \
        --lm-extra trainer.max_epochs=4 [--backward] [--cell lstm]
    python scripts/bench_transfer.py --data-dir DATA --out outputs/bench_transfer \
        --sizes all --seeds 1 2 3 --lm-extra trainer.max_epochs=4 --backward \
        [--transfer-extra task.finetune.unfreeze_schedule=gradual \
                          task.finetune.layer_lr_decay=0.385]

``experiment=sst2_transfer`` trains 6 epochs, tuned for the 67k training phrases: on 1,000
sentences that is 96 steps, too few for either start; ``--extra trainer.max_epochs=30``
gives small subsets room, early stopping on the validation slice ending each run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

from nlpseq.data.phrases import whole_sentence_rows


def read_rows(path: Path) -> list[tuple[str, str]]:
    """(text, label) rows of an SST-2 TSV (header ``sentence\\tlabel``; a row is split on
    its last tab, the text stripped)."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    rows = [line.rsplit("\t", 1) for line in lines if line.strip()]
    return [(text.strip(), label) for text, label in rows]


def whole_sentences(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The rows that no other row contains (token boundaries respected), in file order;
    a repeated row once (``nlpseq.data.phrases``)."""
    return [rows[i] for i in whole_sentence_rows([text for text, _ in rows])]


def write_tsv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        writer.writerow(["sentence", "label"])
        writer.writerows(rows)
    return path


FULL = "all"  # --sizes value: every training row, the data=sst2 protocol


def make_subsets(data_dir: Path, out: Path, sizes: list[int], validation: int,
                 seed: int) -> tuple[dict[int, Path], Path | None]:
    """Nested training subsets and one validation slice, all whole train sentences."""
    if not sizes:
        return {}, None
    sentences = whole_sentences(read_rows(data_dir / "sst2" / "train.tsv"))
    if max(sizes) + validation > len(sentences):
        raise SystemExit(f"error: {len(sentences)} whole sentences in train.tsv, fewer than "
                         f"the largest size plus the validation slice ({max(sizes)} + "
                         f"{validation})")
    random.Random(seed).shuffle(sentences)
    held_out = write_tsv(out / "data" / "validation.tsv", sentences[:validation])
    pool = sentences[validation:]
    subsets = {size: write_tsv(out / "data" / f"train_{size}.tsv", pool[:size])
               for size in sizes}
    print(f"{len(sentences)} whole sentences; validation {validation}, sizes {sizes}",
          flush=True)
    return subsets, held_out


def train(run_dir: Path, overrides: list[str], data_dir: Path) -> dict:
    """One ``nlpseq-train`` run (skipped when its metrics.json exists); its metrics."""
    metrics = run_dir / "metrics.json"
    if not metrics.is_file():
        command = [sys.executable, "-m", "nlpseq.cli.train", *overrides,
                   f"hydra.run.dir={run_dir}"]
        print("+", " ".join(command[2:]), flush=True)
        env = {**os.environ, "NLPSEQ_DATA_DIR": str(data_dir.resolve())}
        result = subprocess.run(command, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if result.returncode != 0:
            raise SystemExit(f"error: {run_dir} failed:\n{result.stderr[-2000:]}")
    return json.loads(metrics.read_text())


def merged(*override_lists: list[str]) -> list[str]:
    """The overrides of all lists, a key given again taking the later value (Hydra refuses
    a key given twice)."""
    by_key = {}
    for overrides in override_lists:
        by_key.update((o.split("=", 1)[0], o) for o in overrides)
    return list(by_key.values())


def language_models(out: Path, data_dir: Path, args) -> list[str]:
    """Train the language model(s); the init_from overrides that start from them."""
    common = ["experiment=sst2_lm", f"encoder={args.cell}", *merged(args.extra, args.lm_extra)]
    forward = out / "lm_forward"
    train(forward, common, data_dir)
    starts = [f"encoder.init_from={forward}"]
    if args.backward:
        backward = out / "lm_backward"
        train(backward, [*common, "data.reverse=true"], data_dir)
        starts.append(f"encoder.init_from_backward={backward}")
    return starts


def scratch_settings(out: Path, backward: bool) -> list[str]:
    """The transferred model's shape, from the forward language model's stored config, and
    no fine-tuning schedule whatever the experiment sets (a random start has no layers to
    unfreeze gradually)."""
    import yaml

    config = yaml.safe_load((out / "lm_forward" / ".hydra" / "config.yaml").read_text())
    embedding = config["task"]["embedding_dim"] * (2 if backward else 1)
    encoder = config["encoder"]
    return [f"encoder.hidden_size={encoder['hidden_size']}",
            f"encoder.num_layers={encoder['num_layers']}",
            f"encoder.bidirectional={str(backward).lower()}",
            f"task.embedding_dim={embedding}", "tokenizer.lowercase=true",
            "task.finetune.unfreeze_schedule=null", "task.finetune.layer_lr_decay=1.0"]


def size_label(size: int | str) -> str:
    return "all of train.tsv but the held-out sentences" if size == FULL else f"{size:,}"


def summarize(results: list[dict], out: Path) -> None:
    """transfer.md (mean ± std per size and start) and transfer.png (the subset sizes)."""
    table = ["| training sentences | from scratch (dev acc %) | transferred (dev acc %) | seeds |",
             "|---|---|---|---|"]
    curves: dict[str, tuple[list[int], list[float], list[float]]] = {}
    sizes = {r["size"] for r in results}
    for size in sorted(sizes - {FULL}) + sorted(sizes & {FULL}):
        cells = []
        for start in ("scratch", "transferred"):
            values = [100 * r["dev_acc"] for r in results
                      if r["size"] == size and r["start"] == start]
            mean = statistics.fmean(values)
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{mean:.2f} ± {std:.2f}")
            if size != FULL:
                xs, ys, es = curves.setdefault(start, ([], [], []))
                xs.append(size), ys.append(mean), es.append(std)
        table.append(f"| {size_label(size)} | {cells[0]} | {cells[1]} | {len(values)} |")
    (out / "transfer.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    if not curves:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 3.5))
    for start, (xs, ys, es) in curves.items():
        axes.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=start)
    axes.set(xscale="log", xlabel="training sentences (SST-2, whole sentences)",
             ylabel="dev accuracy (%)", title="Pretrained LM vs from scratch")
    axes.legend()
    figure.tight_layout()
    figure.savefig(out / "transfer.png", dpi=120)


def size_arg(text: str) -> int | str:
    return FULL if text == FULL else int(text)


def run_data(size: int | str, subsets: dict[int, Path], validation: Path | None,
             seed: int) -> tuple[list[str], str]:
    """The data overrides of one run, and the split that chooses its checkpoint."""
    if size == FULL:  # the shipped data=sst2 protocol as is
        return [f"seed={seed}"], ("5 % of train.tsv's whole sentences held out with the run's seed "
                                "(and the rows they contain)")
    return ([f"data.train_file={subsets[size]}", f"data.validation_file={validation}",
             "data.test_file=dev.tsv", f"seed={seed}"],
            "validation slice of whole train sentences")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="holds sst2/train.tsv and sst2/dev.tsv")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench_transfer"))
    parser.add_argument("--sizes", type=size_arg, nargs="+", default=[1000, 2000, 5000],
                        help=f"training sentences per subset; '{FULL}' for the full train set")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--validation", type=int, default=500,
                        help="whole train sentences that choose the checkpoints")
    parser.add_argument("--subset-seed", type=int, default=0)
    parser.add_argument("--cell", default="lstm", choices=["rnn", "lstm", "gru"])
    parser.add_argument("--backward", action="store_true",
                        help="also a backward LM: a bidirectional classifier, one direction each")
    parser.add_argument("--extra", nargs="*", default=[],
                        help="overrides for every run (e.g. trainer.max_epochs=2)")
    parser.add_argument("--lm-extra", nargs="*", default=[],
                        help="overrides for the language models only")
    parser.add_argument("--classifier-extra", nargs="*", default=[],
                        help="overrides for both classifiers, from scratch and transferred "
                             "(e.g. data.holdout=rows: the random phrase slice)")
    parser.add_argument("--transfer-extra", nargs="*", default=[],
                        help="overrides for the transferred classifiers only (e.g. "
                             "task.finetune.unfreeze_schedule=gradual: ULMFiT's gradual "
                             "unfreezing)")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    subsets, validation = make_subsets(args.data_dir, out,
                                       [s for s in args.sizes if s != FULL],
                                       args.validation, args.subset_seed)
    starts = language_models(out, args.data_dir, args)
    scratch = scratch_settings(out, args.backward)
    results = []
    for size in args.sizes:
        for seed in args.seeds:
            data, chosen_on = run_data(size, subsets, validation, seed)
            order = [("transferred", [*starts, *args.transfer_extra]),
                     ("scratch", ["encoder.init_from=null", *scratch])]
            if seed % 2 == 0:  # alternate which runs first: neither always meets a warmer machine
                order.reverse()
            for start, overrides in order:
                metrics = train(out / "runs" / f"{start}_{size}_s{seed}",
                                ["experiment=sst2_transfer", f"encoder={args.cell}",
                                 *overrides, *data, *args.extra, *args.classifier_extra],
                                args.data_dir)
                results.append({"size": size, "seed": seed, "start": start,
                                "dev_acc": metrics["test/acc"],
                                "chosen_on": chosen_on})
    (out / "transfer.json").write_text(json.dumps(results, indent=2) + "\n")
    summarize(results, out)


if __name__ == "__main__":
    main()
