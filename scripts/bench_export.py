"""Benchmark: an exported model in onnxruntime against the checkpoint in PyTorch, on the CPU.

For a sentiment, generation or translation checkpoint, exports it (fp32 and dynamic int8
ONNX; int8 TorchScript for sentiment and generation) into a temporary folder and times,
at batch 1 and batch 64, the work a user asks of each task: classifying sentences
(sentiment), scoring blocks of ``--length`` tokens from a zero state (generation), greedy
translation (translation). Contenders take turns going first in each of ``--rounds``
rounds; the table gives the median sentences/s, the ratio to PyTorch fp32 and how often
the contender's answer (label, next token, translation) equals PyTorch fp32's.

    python scripts/bench_export.py RUN_DIR --rounds 6
    python scripts/bench_export.py RUN_DIR --input-file texts.txt --threads 1 --json out.json
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_train_step import report

from nlpseq.export.exporter import export_checkpoint
from nlpseq.export.runtime import ExportedModel
from nlpseq.tasks.base import length_batches
from nlpseq.tasks.checkpoint import load_task

SAMPLE = Path(__file__).resolve().parents[1] / "nlpseq" / "data" / "sample"
DEFAULT_INPUT = {"sentiment": "sentiment_test.tsv", "generation": "lm_test.txt",
                 "translation": "translation_test.de"}


def read_texts(task_name: str, input_file: str | None, count: int) -> list[str]:
    """``count`` texts (cycled) from ``input_file`` or the embedded sample of the task."""
    path = Path(input_file) if input_file else SAMPLE / DEFAULT_INPUT[task_name]
    lines = [line.split("\t")[0] for line in path.read_text(encoding="utf-8").splitlines()
             if line.strip()]
    if path.suffix == ".tsv":
        lines = lines[1:]
    return [lines[i % len(lines)] for i in range(count)]


def contenders(task, tokenizer, texts: list[str], batch: int, exports: dict, args) -> dict:
    """name -> a function that answers every text once, in batches of ``batch``."""
    name = task.task_name
    runtimes = {key: ExportedModel(path, threads=args.threads)
                for key, path in exports.items() if key != "torchscript int8"}
    if name == "sentiment":
        ids = tokenizer.encode_batch([t.strip() for t in texts])
        rows, batches = zip(*length_batches(ids, batch, tokenizer), strict=True)
        in_order = np.argsort(np.concatenate(rows))  # batches come by length: back to texts'
        scripted = torch.jit.load(str(exports["torchscript int8"] / "model.pt"))

        def torch_run(model):
            with torch.no_grad():
                return np.concatenate([model(b["tokens"], b["lengths"]).argmax(-1).numpy()
                                       for b in batches])[in_order]

        def onnx_run(runtime):
            return np.concatenate([runtime.run("model", tokens=b["tokens"].numpy(),
                                               lengths=b["lengths"].numpy())["logits"]
                                   .argmax(-1) for b in batches])[in_order]
        found = {"torch fp32": lambda: torch_run(task), "torch int8": lambda: torch_run(scripted)}
    elif name == "generation":
        gen = torch.Generator().manual_seed(0)
        blocks = torch.randint(4, tokenizer.vocab_size, (len(texts), args.length), generator=gen)
        chunks = list(blocks.split(batch))
        scripted = torch.jit.load(str(exports["torchscript int8"] / "model.pt"))
        layers, hidden = task.model.encoder.num_layers, task.model.encoder.hidden_size
        lstm = task.model.encoder.cell == "lstm"

        def torch_run(model, scripted_call=False):
            out = []
            with torch.no_grad():
                for chunk in chunks:
                    zeros = torch.zeros(layers, len(chunk), hidden)
                    state = [zeros, zeros] if lstm else [zeros]
                    logits = (model(chunk, *state) if scripted_call
                              else model(chunk, None, None))[0]
                    out.append(logits[:, -1].argmax(-1).numpy())
            return np.concatenate(out)

        def onnx_run(runtime):
            return np.concatenate([runtime.run("model", tokens=c.numpy(),
                                               **runtime.zero_state(len(c)))["logits"][:, -1]
                                   .argmax(-1) for c in chunks])
        found = {"torch fp32": lambda: torch_run(task.model),
                 "torch int8": lambda: torch_run(scripted, scripted_call=True)}
    else:
        def torch_run(_):
            return [text for row in task.translate(texts, beam_size=1, batch_size=batch)
                    for text, _ in row]

        def onnx_run(runtime):
            return runtime.translate(texts, batch_size=batch)
        found = {"torch fp32": lambda: torch_run(None)}
    for key, runtime in runtimes.items():
        found[key] = lambda runtime=runtime: onnx_run(runtime)
    return found


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    answer = fn()
    return time.perf_counter() - started, answer


def export_all(ckpt_path: str, task_name: str, folder: Path) -> dict[str, Path]:
    """Contender -> export directory under ``folder``: fp32 and dynamic int8 ONNX, and int8
    TorchScript where the exporter quantizes it (not translation)."""
    exports = {"onnx fp32": export_checkpoint(ckpt_path, "onnx", folder / "f"),
               "onnx int8": export_checkpoint(ckpt_path, "onnx", folder / "q", "dynamic")}
    if task_name != "translation":
        exports["torchscript int8"] = export_checkpoint(ckpt_path, "torchscript", folder / "t",
                                                        "dynamic")
    return exports


def time_rounds(runs: dict, rounds: int) -> tuple[dict, dict[str, list[float]]]:
    """Each contender's answers (a warm-up run) and its seconds in each of ``rounds`` rounds,
    the contenders taking turns going first."""
    names = list(runs)
    answers = {name: runs[name]() for name in names}
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            seconds[name].append(timed(runs[name])[0])
    return answers, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ckpt_path", help="a checkpoint or its run directory")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds")
    parser.add_argument("--texts", type=int, default=128, help="sentences timed per round")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--length", type=int, default=32, help="generation: tokens a block")
    parser.add_argument("--input-file", help="texts, one a line (default: the embedded sample)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="CPU threads for both torch and onnxruntime")
    parser.add_argument("--json", help="also write every round's figures to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task, tokenizer, _ = load_task(args.ckpt_path)
    texts = read_texts(task.task_name, args.input_file, args.texts)
    rows, result = [], {"task": task.task_name, "threads": args.threads, "rounds": {}}
    with tempfile.TemporaryDirectory() as folder:
        exports = export_all(args.ckpt_path, task.task_name, Path(folder))
        for batch in args.batch_sizes:
            runs = contenders(task, tokenizer, texts, batch, exports, args)
            names = list(runs)
            answers, seconds = time_rounds(runs, args.rounds)
            base = len(texts) / statistics.median(seconds["torch fp32"])
            for name in names:
                rate = len(texts) / statistics.median(seconds[name])
                same = np.mean([a == b for a, b in zip(answers[name], answers["torch fp32"],
                                                       strict=True)])
                rows.append(f"| {batch} | {name} | {rate:,.0f} | {rate / base:.2f} | "
                            f"{same:.0%} |")
            result["rounds"][str(batch)] = seconds
    print(f"\n{task.task_name} checkpoint, {args.threads} thread(s), {len(texts)} sentences "
          f"a round, medians of {args.rounds} alternating rounds\n")
    print("| batch | runtime | sentences/s | x torch fp32 | same answer as torch fp32 |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    if args.json:
        report(result, args.json)


if __name__ == "__main__":
    main()
