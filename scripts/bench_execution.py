"""Benchmark: dense against packed execution of one padded batch, by cell, longest length
and padding — the measurements behind ``encoder.execution=auto``.

One forward and backward pass of a ``RecurrentEncoder`` (the same weights under
``execution=dense`` and ``execution=packed``) over a batch whose lengths are spread
evenly between ``(1 - spread) * T`` and ``T``; the two executions alternate, and the
median time of each over ``--repeats`` is reported with packed / dense (above 1: dense is
faster). Real tokens per second of the dense pass are shown too.

    python scripts/bench_execution.py                                   # CPU, the default grid
    python scripts/bench_execution.py --cells lstm --lengths 1000 --spreads 0.1
    python scripts/bench_execution.py --device cuda --json execution.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from nlpseq.encoders import RecurrentEncoder


def timed_pass(encoder: RecurrentEncoder, inputs: torch.Tensor, lengths: torch.Tensor,
               device: torch.device) -> float:
    """Seconds of one forward and backward pass."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    out = encoder(inputs, lengths)
    (out.outputs.sum() + out.final_state.sum()).backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def measure(cell: str, longest: int, spread: float, args, device: torch.device) -> dict:
    torch.manual_seed(0)
    encoders = {}
    for execution in ("dense", "packed"):
        torch.manual_seed(0)
        encoders[execution] = RecurrentEncoder(
            cell, args.input, args.hidden, num_layers=args.layers,
            bidirectional=not args.unidirectional, execution=execution).to(device).train()
    shortest = max(1, round((1 - spread) * longest))
    lengths = torch.linspace(shortest, longest, args.batch).round().long()
    lengths = lengths[torch.randperm(args.batch)].to(device)
    inputs = torch.randn(args.batch, longest, args.input, device=device, requires_grad=True)
    times = {"dense": [], "packed": []}
    for repeat in range(args.repeats + 1):  # the first of each is a warm-up
        order = ("dense", "packed") if repeat % 2 else ("packed", "dense")
        for execution in order:
            seconds = timed_pass(encoders[execution], inputs, lengths, device)
            if repeat:
                times[execution].append(seconds)
    dense, packed = (statistics.median(times[e]) for e in ("dense", "packed"))
    return {"cell": cell, "longest": longest, "spread": spread,
            "padding": round(1 - float(lengths.sum()) / (args.batch * longest), 3),
            "dense_ms": round(1000 * dense, 2), "packed_ms": round(1000 * packed, 2),
            "packed_over_dense": round(packed / dense, 2),
            "dense_tokens_per_s": round(float(lengths.sum()) / dense)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", default="rnn,gru,lstm")
    parser.add_argument("--lengths", default="4,16,64,256", help="longest lengths T")
    parser.add_argument("--spreads", default="0.1,0.5,0.9",
                        help="lengths spread evenly over [(1 - spread) T, T]")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--input", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--unidirectional", action="store_true")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    device = torch.device(args.device)
    print("| cell | T | spread | padding | dense ms | packed ms | packed / dense | "
          "dense tokens/s |")
    print("|" + "---|" * 8, flush=True)
    rows = []
    for cell in args.cells.split(","):
        for longest in (int(t) for t in args.lengths.split(",")):
            for spread in (float(s) for s in args.spreads.split(",")):
                r = measure(cell, longest, spread, args, device)
                rows.append(r)
                print(f"| {cell} | {longest} | {spread} | {r['padding']:.2f} | "
                      f"{r['dense_ms']:.1f} | {r['packed_ms']:.1f} | "
                      f"{r['packed_over_dense']:.2f} | {r['dense_tokens_per_s']:,} |",
                      flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "device": (torch.cuda.get_device_name()
                                                      if device.type == "cuda" else "cpu"),
                       "torch": torch.__version__, "threads": torch.get_num_threads(),
                       "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
