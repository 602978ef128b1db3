"""Benchmark: beam search against greedy decoding of a translation checkpoint.

Decodes a split of the checkpoint's own data (or ``--split``) with greedy and with beam
search: one warm-up pass of each, then ``--passes`` passes alternating which goes first,
each through ``task.evaluate`` — the code ``nlpseq-eval`` runs — and reports the median
sentences/s of each, their ratio, every pass, and both BLEU scores. The decoding time is
that of the decoder alone (``sentences_per_s`` in a report leaves out the loss pass).

    NLPSEQ_DATA_DIR=DATA python scripts/bench_decoding.py RUN_DIR --beam-size 5
    python scripts/bench_decoding.py RUN_DIR --batch-size 128 --passes 5 --json out.json
"""

from __future__ import annotations

import argparse
import statistics

import torch
from bench_train_step import report
from hydra.utils import instantiate

from nlpseq.tasks.checkpoint import load_task


def evaluation_loader(task, tokenizer, cfg, split: str, batch_size: int | None):
    """The split of the checkpoint's own data, batched as ``nlpseq-eval`` batches it."""
    runtime = {"eval_batch_size": batch_size} if batch_size else {}
    datamodule = instantiate(cfg.data, **runtime)
    datamodule.load_for_evaluation(split)
    datamodule.encode(tokenizer, splits=(split,))
    return list(datamodule.split_loader(split))  # built once: every pass decodes the same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ckpt_path", help="a translation checkpoint or its run directory")
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, help="sentences a batch (default: the "
                                                       "data config's eval_batch_size)")
    parser.add_argument("--passes", type=int, default=3, help="timed passes of each")
    parser.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    task, tokenizer, cfg = load_task(args.ckpt_path, expected_task="translation")
    device = torch.device("cuda" if args.accelerator == "gpu" else "cpu")
    task.to(device)
    loader = evaluation_loader(task, tokenizer, cfg, args.split, args.batch_size)
    widths = {"greedy": 1, "beam": args.beam_size}
    speeds: dict[str, list[float]] = {name: [] for name in widths}
    bleu = {}
    for name, width in widths.items():  # warm-up: kernels, allocator, caches
        bleu[name] = task.evaluate(loader, "x", beam_size=width)["x/bleu"]
    for index in range(args.passes):
        order = list(widths) if index % 2 == 0 else list(reversed(widths))
        for name in order:
            speeds[name].append(task.evaluate(loader, "x", beam_size=widths[name])
                                ["x/sentences_per_s"])
    greedy, beam = (statistics.median(speeds[name]) for name in widths)
    report({
        "checkpoint": str(args.ckpt_path), "split": args.split,
        "sentences": sum(len(batch["references"]) for batch in loader),
        "beam_size": args.beam_size, "passes": args.passes,
        "greedy_sentences_per_s": round(greedy, 1), "beam_sentences_per_s": round(beam, 1),
        "beam_over_greedy": round(beam / greedy, 3),
        "greedy_passes": [round(x, 1) for x in speeds["greedy"]],
        "beam_passes": [round(x, 1) for x in speeds["beam"]],
        "greedy_bleu": round(bleu["greedy"], 2), "beam_bleu": round(bleu["beam"], 2),
        "torch_threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
    }, args.json)


if __name__ == "__main__":
    main()
