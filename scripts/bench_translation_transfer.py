"""Benchmark: translation started from language models on each side's text, against from
scratch, at a fixed CPU budget.

Multi30k de -> en with ``experiment=multi30k``, changed only where a language model's
layers must fit: a unidirectional encoder of 512 units (a language model reads one way)
and a decoder without input feeding (its RNN then reads the target embedding alone, as a
language model's does). For each seed two lanes run side by side, one core each:

- ``transfer``: a German and an English language model (``task=generation`` on the
  training side's lines, sp_unigram 8,000, the translation model's sizes), ``--lm-minutes``
  each, then the translation model from both (``encoder.init_from``,
  ``task.decoder.init_from``) for ``--minutes``;
- ``scratch``: the same translation model from scratch for ``--minutes`` + 2 x
  ``--lm-minutes``: the same total CPU time.

Both choose their checkpoint on greedy validation BLEU (Multi30k val, checked four times an
epoch); test_2016_flickr BLEU (beam 5) is reported. For the equal-training-time view, each
validation's BLEU is placed at its step x the run's seconds a training step, and each run's
best by the transferred run's training time (validation excluded) is shown. Writes
``OUT/translation_transfer.json`` and ``.md``; finished runs in OUT are read, not run again.

    OMP_NUM_THREADS=1 python scripts/bench_translation_transfer.py --data-dir DATA \
        --out outputs/bench_translation_transfer --seeds 1 2 3 --lm-minutes 4 --minutes 8
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench_transfer import train

SIZES = ["encoder.hidden_size=512", "encoder.num_layers=1", "task.embedding_dim=256"]
TRANSLATION = ["experiment=multi30k", "encoder.bidirectional=false",
               "task.decoder.input_feeding=false", "trainer.val_check_interval=0.25", *SIZES]
LANGUAGE_MODEL = ["task=generation", "data=files", "data.mode=lines", "tokenizer=sp_unigram",
                  "tokenizer.vocab_size=8000", "trainer.val_check_interval=0.5", *SIZES]


def budget(minutes: float) -> str:
    """``trainer.max_time`` for a number of minutes (DD:HH:MM:SS)."""
    seconds = round(minutes * 60)
    return f"trainer.max_time=00:{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def side_texts(data_dir: Path, out: Path) -> dict[str, list[str]]:
    """Each language's train and val lines as .txt files (a language model's data=files)."""
    texts = out / "data"
    texts.mkdir(parents=True, exist_ok=True)
    files = {}
    for lang in ("de", "en"):
        for split in ("train", "val"):
            target = texts / f"{split}.{lang}.txt"
            if not target.is_file():
                shutil.copyfile(data_dir / "multi30k" / f"{split}.{lang}", target)
        files[lang] = [f"data.train_file={texts / f'train.{lang}.txt'}",
                       f"data.validation_file={texts / f'val.{lang}.txt'}"]
    return files


def bleu_by_time(run_dir: Path, metrics: dict) -> list[tuple[float, float]]:
    """(training seconds, greedy val BLEU) at each validation of a run (metrics.json's
    val/bleu is the chosen checkpoint's with beam search: not on this curve)."""
    rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
    checks = [(int(r["step"]), float(r["val/bleu"])) for r in rows if r.get("val/bleu")]
    last_step = max(int(r["step"]) for r in rows) or 1
    per_step = metrics["train/time_s"] / last_step
    return [(step * per_step, bleu) for step, bleu in checks]


def translate(out: Path, data_dir: Path, setting: str, seed: int, minutes: float,
              extra: list[str]) -> dict:
    """One translation run of a lane: its metrics and its validation curve."""
    run_dir = out / "runs" / f"{setting}_s{seed}"
    metrics = train(run_dir, [*TRANSLATION, f"seed={seed}", budget(minutes), *extra], data_dir)
    return {"setting": setting, "seed": seed, "metrics": metrics,
            "curve": bleu_by_time(run_dir, metrics)}


def transfer_lane(out: Path, data_dir: Path, seed: int, files, args) -> dict:
    """The two language models, then the translation model started from them."""
    models = {lang: out / "runs" / f"lm_{lang}_s{seed}" for lang in ("de", "en")}
    for lang, run_dir in models.items():
        train(run_dir, [*LANGUAGE_MODEL, *files[lang], f"seed={seed}", budget(args.lm_minutes)],
              data_dir)
    return translate(out, data_dir, "transfer", seed, args.minutes,
                     [f"encoder.init_from={models['de']}",
                      f"task.decoder.init_from={models['en']}"])


def scratch_lane(out: Path, data_dir: Path, seed: int, args) -> dict:
    """The translation model from scratch, for the transfer lane's whole time."""
    return translate(out, data_dir, "scratch", seed, args.minutes + 2 * args.lm_minutes, [])


def bleu_at(curve: list[tuple[float, float]], seconds: float) -> float | None:
    """The best greedy val BLEU reached within ``seconds`` of training."""
    reached = [bleu for at, bleu in curve if at <= seconds]
    return max(reached) if reached else None


def summarize(results: list[dict], out: Path, args) -> str:
    """Test BLEU per setting (mean ± std over seeds), and the best greedy val BLEU each run
    had reached by the training time of the transferred run of its seed."""
    transferred = {r["seed"]: r["metrics"]["train/time_s"] for r in results
                   if r["setting"] == "transfer"}
    table = ["| setting | CPU minutes | test BLEU, beam 5 (per seed) | mean ± std | best greedy "
             "val BLEU by the transferred run's training time (per seed) |",
             "|---|---|---|---|---|"]
    for setting in ("scratch", "transfer"):
        runs = [r for r in results if r["setting"] == setting]
        if not runs:
            continue
        bleus = [r["metrics"]["test/bleu"] for r in runs]
        spread = statistics.stdev(bleus) if len(bleus) > 1 else 0.0
        early = [bleu_at(r["curve"], transferred[r["seed"]]) if r["seed"] in transferred
                 else None for r in runs]
        cost = (f"{args.minutes + 2 * args.lm_minutes:g}" if setting == "scratch"
                else f"{args.lm_minutes:g} + {args.lm_minutes:g} (LMs) + {args.minutes:g}")
        table.append(f"| {setting} | {cost} | {' / '.join(f'{b:.2f}' for b in bleus)} | "
                     f"{statistics.fmean(bleus):.2f} ± {spread:.2f} | "
                     f"{' / '.join('–' if b is None else f'{b:.1f}' for b in early)} |")
    text = "\n".join(table) + "\n"
    (out / "translation_transfer.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True,
                        help="holds multi30k/{train,val,test_2016_flickr}.{de,en}")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench_translation_transfer"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--lm-minutes", type=float, default=4.0,
                        help="training budget of each language model")
    parser.add_argument("--minutes", type=float, default=8.0,
                        help="training budget of the transferred translation model")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    files = side_texts(args.data_dir, args.out)
    results = []
    with ThreadPoolExecutor(max_workers=2) as lanes:
        for seed in args.seeds:
            jobs = [lanes.submit(transfer_lane, args.out, args.data_dir, seed, files, args),
                    lanes.submit(scratch_lane, args.out, args.data_dir, seed, args)]
            results += [job.result() for job in jobs]
            (args.out / "translation_transfer.json").write_text(json.dumps(results, indent=1))
            print(summarize(results, args.out, args), flush=True)


if __name__ == "__main__":
    main()
