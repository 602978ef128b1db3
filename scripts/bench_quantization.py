"""Benchmark: what dynamic int8 quantization costs in quality and buys in speed, on the CPU.

Exports the checkpoint (fp32 and dynamic int8 ONNX; int8 TorchScript for sentiment and
generation) into a temporary folder, computes the task's metric on real data for PyTorch
fp32 and each export, and times them as ``bench_export.py`` does (sentences/s at batch 1 and
64, medians of alternating rounds over the first ``--texts`` sentences):

- sentiment, ``--data DEV.tsv`` (the run's text and label columns): accuracy;
- translation, ``--data SOURCE REFERENCE``: sacreBLEU of greedy translations, every
  contender decoding greedily;
- generation, ``--data TEXT``: loss in nats a token on the run's validation split of
  ``TEXT`` (its last ``validation_fraction``), read as the run validates: the split's
  stream cut into ``eval_num_streams`` parallel rows and blocks of ``block_size`` tokens,
  the state carried from block to block; every contender reads the same blocks.

    python scripts/bench_quantization.py RUN --data data/sst2/dev.tsv --rounds 5
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from bench_export import contenders, export_all, read_texts, time_rounds
from hydra.utils import instantiate

from nlpseq.data.language_model import StreamBlocks
from nlpseq.export.runtime import ExportedModel
from nlpseq.tasks.checkpoint import load_task

METRIC = {"sentiment": ("accuracy (%)", 100, 2), "translation": ("BLEU", 1, 2),
          "generation": ("loss (nats/token)", 1, 4)}  # name, scale, decimals


def read_labelled(path: str, text_column: str, label_column: str,
                  label_names: list[str]) -> tuple[list[str], np.ndarray]:
    """Texts and label indices of a TSV with a header; a label is a name or an index."""
    with open(path, encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE))
    labels = [row[label_column] for row in rows]
    index = [label_names.index(x) if x in label_names else int(x) for x in labels]
    return [row[text_column] for row in rows], np.array(index)


def validation_blocks(train_cfg, tokenizer, text_file: str) -> StreamBlocks:
    """The run's validation split of ``text_file``, as the run's data config cuts it."""
    data = train_cfg.data.copy()
    if data.mode != "stream":
        raise SystemExit(f"error: data.mode='{data.mode}': the loss is read over the "
                         "validation stream; this script needs a data.mode='stream' run")
    data.train_file, data.validation_file, data.test_file = str(Path(text_file).resolve()), \
        None, None
    datamodule = instantiate(data)
    datamodule.load(("train", "validation"))
    datamodule.encode(tokenizer, splits=("validation",))
    return StreamBlocks(datamodule.streams["validation"], data.eval_num_streams, data.block_size,
                        "validation")


def stream_loss(step, blocks: StreamBlocks, state) -> float:
    """Mean negative log-likelihood (nats) of every block's targets; ``step(tokens (B, l),
    state) -> (logits (B, l, V), state)`` in numpy, the state carried across blocks."""
    total = 0.0
    for i in range(len(blocks)):
        block = blocks[i]
        logits, state = step(block["tokens"].numpy(), state)
        logits = logits.astype(np.float64)  # (B, l, V)
        top = logits.max(-1, keepdims=True)
        log_z = np.log(np.exp(logits - top).sum(-1)) + top[..., 0]  # (B, l)
        picked = np.take_along_axis(logits, block["targets"].numpy()[..., None], -1)[..., 0]
        total += float((log_z - picked).sum())
    return total / blocks.num_targets


def lm_losses(task, exports: dict, blocks: StreamBlocks, threads: int) -> dict[str, float]:
    """Validation loss of PyTorch fp32 and of each export over the same blocks."""
    model, rows = task.model, blocks.data.shape[0]
    scripted = torch.jit.load(str(exports["torchscript int8"] / "model.pt"))
    lstm = model.encoder.cell == "lstm"
    zeros = torch.zeros(model.encoder.num_layers, rows, model.encoder.hidden_size)

    def torch_step(tokens, state):
        logits, state = model(torch.from_numpy(tokens), None, state)
        return logits.numpy(), state

    def scripted_step(tokens, state):
        logits, *state = scripted(torch.from_numpy(tokens), *state)
        return logits.numpy(), state

    with torch.no_grad():
        found = {"torch fp32": stream_loss(torch_step, blocks, None),
                 "torch int8": stream_loss(scripted_step, blocks,
                                           [zeros, zeros] if lstm else [zeros])}
    for name in ("onnx fp32", "onnx int8"):
        runtime = ExportedModel(exports[name], threads=threads)
        found[name] = stream_loss(runtime._lm_step, blocks, runtime.zero_state(rows))
    return found


def quality(task, tokenizer, train_cfg, exports: dict, args) -> dict[str, float]:
    """Contender -> the task's metric on ``args.data``."""
    if task.task_name == "generation":
        blocks = validation_blocks(train_cfg, tokenizer, args.data[0])
        return lm_losses(task, exports, blocks, args.threads)
    if task.task_name == "sentiment":
        texts, labels = read_labelled(args.data[0], train_cfg.data.text_column,
                                      train_cfg.data.label_column, task.label_names)
        runs = contenders(task, tokenizer, texts, 64, exports, args)
        return {name: float(np.mean(run() == labels)) for name, run in runs.items()}
    import sacrebleu

    source, reference = (Path(p).read_text(encoding="utf-8").splitlines() for p in args.data)
    runs = contenders(task, tokenizer, source, 64, exports, args)
    return {name: sacrebleu.corpus_bleu(run(), [reference]).score for name, run in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ckpt_path", help="a checkpoint or its run directory")
    parser.add_argument("--data", nargs="+", required=True,
                        help="sentiment: a TSV; translation: SOURCE REFERENCE; generation: TEXT")
    parser.add_argument("--rounds", type=int, default=5, help="alternating timing rounds")
    parser.add_argument("--texts", type=int, default=128, help="sentences timed per round")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--length", type=int, default=32, help="generation: tokens a block")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="CPU threads for both torch and onnxruntime")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task, tokenizer, train_cfg = load_task(args.ckpt_path)
    task.eval()
    wanted = {"translation": 2}.get(task.task_name, 1)
    if len(args.data) != wanted:
        parser.error(f"--data: a {task.task_name} checkpoint needs {wanted} file(s), "
                     f"got {len(args.data)}")
    timed_input = None if task.task_name == "generation" else args.data[0]
    texts = read_texts(task.task_name, timed_input, args.texts)
    with tempfile.TemporaryDirectory() as folder:
        exports = export_all(args.ckpt_path, task.task_name, Path(folder))
        scores = quality(task, tokenizer, train_cfg, exports, args)
        rates = {}
        for batch in args.batch_sizes:
            _, seconds = time_rounds(contenders(task, tokenizer, texts, batch, exports, args),
                                     args.rounds)
            rates[batch] = {name: len(texts) / statistics.median(s)
                            for name, s in seconds.items()}
    metric, scale, places = METRIC[task.task_name]
    base = scores["torch fp32"]
    print(f"\n{task.task_name} checkpoint, {args.threads} thread(s); speed: {len(texts)} "
          f"sentences a round, medians of {args.rounds} alternating rounds\n")
    sizes = " | ".join(f"sentences/s, batch {b}" for b in args.batch_sizes)
    print(f"| runtime | {metric} | change vs torch fp32 | {sizes} |")
    print("|---|---|---|" + "---|" * len(args.batch_sizes))
    for name in scores:
        speed = " | ".join(f"{rates[b][name]:,.0f}" for b in args.batch_sizes)
        print(f"| {name} | {scores[name] * scale:.{places}f} | "
              f"{(scores[name] - base) * scale:+.{places}f} | "
              f"{speed} |")


if __name__ == "__main__":
    main()
