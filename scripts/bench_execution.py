"""Benchmark: dense against packed execution of one padded batch, by cell, longest length
and padding — the measurements behind ``encoder.execution=auto``.

One forward and backward pass of a ``RecurrentEncoder`` (the same weights under
``execution=dense`` and ``execution=packed``) over a batch whose lengths are spread
evenly between ``(1 - spread) * T`` and ``T``; the two executions alternate, and the
median time of each over ``--repeats`` is reported with packed / dense (above 1: dense is
faster). Real tokens per second of the dense pass are shown too. ``--raw`` adds the bare
``torch.nn.LSTM`` / ``GRU`` / ``RNN`` of the same sizes called on the whole padded batch
(no lengths: on a GPU, cuDNN at that shape), the floor nlpseq's encoder is measured
against; its tokens/s counts the same real tokens.

    python scripts/bench_execution.py                                   # CPU, the default grid
    python scripts/bench_execution.py --cells lstm --lengths 1000 --spreads 0.1
    python scripts/bench_execution.py --device cuda --json execution.json
    python scripts/bench_execution.py --device cuda --raw --cells lstm --lengths 64 \
        --spreads 0 --batch 128 --input 512 --hidden 512 --layers 2   # against raw cuDNN
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from nlpseq.encoders import RecurrentEncoder


def timed_pass(encoder: torch.nn.Module, inputs: torch.Tensor, lengths: torch.Tensor,
               device: torch.device) -> float:
    """Seconds of one forward and backward pass (a bare torch module reads no lengths)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    if isinstance(encoder, RecurrentEncoder):
        out = encoder(inputs, lengths)
        (out.outputs.sum() + out.final_state.sum()).backward()
    else:
        outputs, final = encoder(inputs)
        final = torch.cat(final) if isinstance(final, tuple) else final  # LSTM: (h, c)
        (outputs.sum() + final.sum()).backward()
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
    if args.raw:
        torch.manual_seed(0)
        encoders["raw"] = getattr(torch.nn, cell.upper())(
            args.input, args.hidden, num_layers=args.layers, batch_first=True,
            bidirectional=not args.unidirectional).to(device).train()
    shortest = max(1, round((1 - spread) * longest))
    lengths = torch.linspace(shortest, longest, args.batch).round().long()
    lengths = lengths[torch.randperm(args.batch)].to(device)
    inputs = torch.randn(args.batch, longest, args.input, device=device, requires_grad=True)
    times = {execution: [] for execution in encoders}
    for repeat in range(args.repeats + 1):  # the first of each is a warm-up
        order = list(encoders) if repeat % 2 else list(reversed(encoders))
        for execution in order:
            seconds = timed_pass(encoders[execution], inputs, lengths, device)
            if repeat:
                times[execution].append(seconds)
    median = {execution: statistics.median(seconds) for execution, seconds in times.items()}
    dense, packed = median["dense"], median["packed"]
    row = {"cell": cell, "longest": longest, "spread": spread,
           "padding": round(1 - float(lengths.sum()) / (args.batch * longest), 3),
           "dense_ms": round(1000 * dense, 2), "packed_ms": round(1000 * packed, 2),
           "packed_over_dense": round(packed / dense, 2),
           "dense_tokens_per_s": round(float(lengths.sum()) / dense)}
    if "raw" in median:
        row.update(raw_ms=round(1000 * median["raw"], 2),
                   raw_tokens_per_s=round(float(lengths.sum()) / median["raw"]),
                   dense_over_raw=round(dense / median["raw"], 2))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
    parser.add_argument("--raw", action="store_true",
                        help="also time the bare torch module on the whole padded batch")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    device = torch.device(args.device)
    raw = " raw ms | raw tokens/s | dense / raw |" if args.raw else ""
    print("| cell | T | spread | padding | dense ms | packed ms | packed / dense | "
          "dense tokens/s |" + raw)
    print("|" + "---|" * (11 if args.raw else 8), flush=True)
    rows = []
    for cell in args.cells.split(","):
        for longest in (int(t) for t in args.lengths.split(",")):
            for spread in (float(s) for s in args.spreads.split(",")):
                r = measure(cell, longest, spread, args, device)
                rows.append(r)
                print(f"| {cell} | {longest} | {spread} | {r['padding']:.2f} | "
                      f"{r['dense_ms']:.1f} | {r['packed_ms']:.1f} | "
                      f"{r['packed_over_dense']:.2f} | {r['dense_tokens_per_s']:,} |"
                      + (f" {r['raw_ms']:.1f} | {r['raw_tokens_per_s']:,} | "
                         f"{r['dense_over_raw']:.2f} |" if args.raw else ""), flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "device": (torch.cuda.get_device_name()
                                                      if device.type == "cuda" else "cpu"),
                       "torch": torch.__version__, "threads": torch.get_num_threads(),
                       "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
