"""Benchmark: nlpseq's sentiment training step against a plain dense PyTorch loop, on
sentences (~20 tokens), paragraphs (~250), documents (~1,000) and reviews (long-tailed:
median 175 words, mean ~230, up to 2,500), for each cell.

The texts are consecutive SST-2 training sentences of one label joined until they reach
the regime's length (±20 %; reviews: a log-normal draw per text), so every regime has real
words and real labels. Texts are read whole, except reviews, which keep the default cut
(``data.max_length``) as a user's run would. All contenders train on the same
length-bucketed batches that nlpseq's DataModule cuts (the defaults of ``nlpseq-train``
plus your overrides):

- plain: a hand-written model of the same size (embedding, ``torch.nn.RNN/GRU/LSTM`` run
  on the padded batch as it is, masked max pooling, linear) with fused AdamW and gradient
  clipping in a bare loop: what a user would write;
- nlpseq: the task under a Lightning Trainer (no logger, checkpoints or validation: the
  training step alone), with the encoder's default execution (dense on a CPU);
- packed: the same with ``encoder.execution=packed``, on the first ``--packed-batches``
  batches of the first ``--packed-rounds`` rounds (a packed backward pass over documents
  takes minutes a batch on a CPU).

Each round runs every contender once, in an order that rotates from round to round;
medians of real (non-pad) tokens/s are reported with their ratios, as a table and JSON.
The texts are written to ``--texts-dir`` (``<regime>/{train,validation,test}.tsv``; test
and validation 100 texts each) so that full training runs can use them.

    NLPSEQ_DATA_DIR=../shared/data python scripts/bench_lengths.py
    NLPSEQ_DATA_DIR=../shared/data python scripts/bench_lengths.py --cells gru \
        --regimes documents --rounds 5 encoder.hidden_size=512
    NLPSEQ_DATA_DIR=../shared/data python scripts/bench_lengths.py --texts-dir texts --rounds 0
    nlpseq-train data=files data.train_file=texts/paragraphs/train.tsv \
        data.validation_file=texts/paragraphs/validation.tsv \
        data.test_file=texts/paragraphs/test.tsv
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import logging
import math
import os
import random
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import datasets
import torch
import torch.nn.functional as F
from bench_train_step import compose_train, lightning_loop
from hydra.utils import instantiate
from torch import nn

from nlpseq.data.batching import padding_efficiency
from nlpseq.heads.classification import masked_max
from nlpseq.tasks.checkpoint import build_task

# target words per text: a fixed size ±20 %, or (reviews) lengths spread like movie reviews
REGIMES = {"sentences": 20, "paragraphs": 250, "documents": 1000, "reviews": "long-tailed"}
# reviews: log-normal words per text, median 175 and mean about 230, clipped to 10..2,500
REVIEW_MEDIAN, REVIEW_SIGMA, REVIEW_RANGE = 175, 0.75, (10, 2500)
CELLS = ("rnn", "gru", "lstm")


def sst2_rows(data_dir: Path) -> list[tuple[str, str]]:
    """(sentence, label) rows of SST-2's training file, in file order."""
    path = data_dir / "sst2" / "train.tsv"
    if not path.is_file():
        raise SystemExit(f"error: {path} not found; set NLPSEQ_DATA_DIR to the shared data")
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()[1:]  # header: sentence<TAB>label
    return [(text.strip(), label) for text, _, label in (line.rpartition("\t") for line in lines)]


def join_texts(rows: list[tuple[str, str]], regime: str, seed: int) -> list[tuple[str, str]]:
    """Join consecutive rows of the same label into texts of the regime's size: a text ends
    before the sentence that would take it past its target, drawn for each text."""
    rng = random.Random(seed)

    def draw_target() -> int:
        if regime != "reviews":
            return rng.randint(int(0.8 * REGIMES[regime]), int(1.2 * REGIMES[regime]))
        words = round(rng.lognormvariate(math.log(REVIEW_MEDIAN), REVIEW_SIGMA))
        return min(max(words, REVIEW_RANGE[0]), REVIEW_RANGE[1])

    buffers: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    targets: dict[str, int] = {}
    texts = []
    for sentence, label in rows:
        size = len(sentence.split())
        target = targets.setdefault(label, draw_target())
        if buffers.get(label) and counts[label] + size > target:
            texts.append((" ".join(buffers[label]), label))
            buffers[label], counts[label] = [], 0
            targets[label] = draw_target()
        buffers.setdefault(label, []).append(sentence)
        counts[label] = counts.get(label, 0) + size
    return texts


def write_texts(rows: list[tuple[str, str]], regime: str, out_dir: Path) -> Path:
    """Write a regime's texts as ``train``, ``validation`` and ``test`` TSV files (the last
    200 texts are validation and test) into ``out_dir/regime``; return that folder."""
    texts = join_texts(rows, regime, seed=0)
    folder = out_dir / regime
    folder.mkdir(parents=True, exist_ok=True)
    splits = {"train": texts[:-200], "validation": texts[-200:-100], "test": texts[-100:]}
    for split, split_rows in splits.items():
        with open(folder / f"{split}.tsv", "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
            writer.writerow(["sentence", "label"])
            writer.writerows(split_rows)
    return folder


class PlainClassifier(nn.Module):
    """What a user writes by hand: embedding -> dense torch RNN/GRU/LSTM -> masked max ->
    linear, with nlpseq's default sizes and dropouts read from the config."""

    def __init__(self, cfg, vocab_size: int, num_classes: int, pad_id: int) -> None:
        super().__init__()
        enc, task = cfg.encoder, cfg.task
        rnn_class = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[enc.cell]
        self.embedding = nn.Embedding(vocab_size, task.embedding_dim, padding_idx=pad_id)
        self.rnn = rnn_class(task.embedding_dim, enc.hidden_size, num_layers=enc.num_layers,
                             bidirectional=enc.bidirectional, batch_first=True,
                             dropout=enc.dropout if enc.num_layers > 1 else 0.0)
        self.embedding_dropout, self.dropout = task.embedding_dropout, task.dropout
        self.out = nn.Linear(enc.hidden_size * (1 + enc.bidirectional), num_classes)

    def forward(self, tokens, lengths):
        embedded = F.dropout(self.embedding(tokens), self.embedding_dropout, self.training)
        outputs, _ = self.rnn(embedded)  # (B, T, D*H): the padded batch as it is
        mask = torch.arange(tokens.size(1))[None, :] < lengths[:, None]  # (B, T)
        return self.out(F.dropout(masked_max(outputs, mask), self.dropout, self.training))


def plain_loop(model: nn.Module, batches: list[dict], cfg) -> float:
    """Train ``model`` on ``batches`` in a bare loop; return real tokens per second."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optimizer.lr,
                                  weight_decay=cfg.optimizer.weight_decay, fused=True)
    tokens, started = 0, time.perf_counter()
    for batch in batches:
        loss = F.cross_entropy(model(batch["tokens"], batch["lengths"]), batch["labels"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.trainer.gradient_clip_val)
        optimizer.step()
        tokens += int(batch["lengths"].sum())
    return tokens / (time.perf_counter() - started)


def long_texts_whole(regime: str) -> list[str]:
    """Fixed-size regimes are read whole; reviews keep the default cut (data.max_length)."""
    return [] if regime == "reviews" else ["data.max_length=null"]


def measure(regime: str, cell: str, texts_dir: Path, args) -> dict:
    """The three contenders on one regime and cell, ``args.rounds`` rotating rounds."""
    cfg = compose_train(["data=files", f"data.train_file={texts_dir / 'train.tsv'}",
                         f"data.validation_file={texts_dir / 'validation.tsv'}",
                         *long_texts_whole(regime), f"encoder={cell}", *args.overrides])
    torch.manual_seed(cfg.seed)
    datamodule = instantiate(cfg.data)
    datamodule.load(("train", "validation"))
    tokenizer = instantiate(cfg.tokenizer)(datamodule.train_texts())
    datamodule.encode(tokenizer)
    loader = datamodule.train_dataloader()
    batches = [b for _, b in zip(range(args.batches), loader, strict=False)]
    initial = build_task(cfg, tokenizer, datamodule.label_names)
    plain_initial = PlainClassifier(cfg, tokenizer.vocab_size, len(datamodule.label_names),
                                    tokenizer.pad_id)
    runs = {"plain": [], "nlpseq": [], "packed": []}
    contenders = list(runs)
    for round_index in range(args.rounds):
        order = contenders[round_index % 3:] + contenders[:round_index % 3]
        for name in order:
            if name == "plain":
                runs[name].append(plain_loop(copy.deepcopy(plain_initial), batches, cfg))
            elif name == "nlpseq":
                runs[name].append(lightning_loop(copy.deepcopy(initial), batches, cfg, "cpu"))
            elif round_index < args.packed_rounds:
                task = copy.deepcopy(initial)
                task.model.encoder.execution = "packed"
                runs[name].append(lightning_loop(task, batches[:args.packed_batches], cfg,
                                                 "cpu"))
    median = {name: statistics.median(rates) for name, rates in runs.items() if rates}
    lengths = [int(n) for b in batches for n in b["lengths"]]
    return {
        "regime": regime, "cell": cell, "batches": len(batches),
        "mean_length": round(statistics.mean(lengths), 1), "max_length": max(lengths),
        "padding_efficiency": round(padding_efficiency(
            loader.batch_sampler.lengths, loader.batch_sampler.batches()), 4),
        **{f"{name}_tokens_per_s": round(rate, 1) for name, rate in median.items()},
        "nlpseq_over_plain": round(median["nlpseq"] / median["plain"], 3),
        "packed_over_plain": round(median["packed"] / median["plain"], 3),
        "nlpseq_over_packed": round(median["nlpseq"] / median["packed"], 2),
        "ratio_by_round": [round(n / p, 3) for n, p in zip(runs["nlpseq"], runs["plain"],
                                                            strict=True)],
        "rounds": {name: [round(rate, 1) for rate in rates] for name, rates in runs.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="config overrides, as for nlpseq-train")
    parser.add_argument("--cells", default=",".join(CELLS))
    parser.add_argument("--regimes", default=",".join(REGIMES))
    parser.add_argument("--batches", type=int, default=12, help="training batches per round")
    parser.add_argument("--rounds", type=int, default=3, help="rotating rounds")
    parser.add_argument("--packed-batches", type=int, default=3)
    parser.add_argument("--packed-rounds", type=int, default=3)
    parser.add_argument("--texts-dir", type=Path, default=None,
                        help="where the texts are written (default: a temporary folder)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    datasets.disable_progress_bars()
    warnings.filterwarnings("ignore", ".*(val_dataloader|LeafSpec).*")
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "nlpseq"):
        logging.getLogger(name).setLevel(logging.ERROR)
    rows = sst2_rows(Path(os.environ.get("NLPSEQ_DATA_DIR", "../shared/data")))
    results = []
    print("| texts | cell | mean / max length | plain tokens/s | nlpseq | packed | "
          "nlpseq / plain | packed / plain | nlpseq / packed |")
    print("|" + "---|" * 9, flush=True)
    out_dir = args.texts_dir or Path(tempfile.mkdtemp(prefix="nlpseq-bench-texts-"))
    for regime in args.regimes.split(","):
        texts_dir = write_texts(rows, regime, out_dir)
        for cell in args.cells.split(",") if args.rounds else []:
            r = measure(regime, cell, texts_dir, args)
            results.append(r)
            print(f"| {regime} | {cell} | {r['mean_length']:.0f} / {r['max_length']} | "
                  f"{r['plain_tokens_per_s']:,.0f} | {r['nlpseq_tokens_per_s']:,.0f} | "
                  f"{r['packed_tokens_per_s']:,.0f} | {r['nlpseq_over_plain']:.2f} | "
                  f"{r['packed_over_plain']:.2f} | {r['nlpseq_over_packed']:.1f} |", flush=True)
    print(f"texts written under {out_dir}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "torch_threads": torch.get_num_threads(),
                       "results": results}, handle, indent=1)


if __name__ == "__main__":
    main()
