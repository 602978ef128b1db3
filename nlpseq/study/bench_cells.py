"""Benchmark: what each recurrent cell costs — RNN, GRU and LSTM encoders at equal hidden
size and at equal parameter count (``match_params``), measured in one run.

Per cell: parameters, forward FLOPs per token (the gate matrix products, closed form:
2 * gates * H * (I + H) per layer), training tokens/s (forward, backward, AdamW step) and
inference tokens/s (forward only), medians over rounds, the memory autograd saves for the
backward pass (any device), and on CUDA the peak GPU memory of training (on the CPU no
per-run peak is reliable: the allocator reuses freed blocks).

With ``--spread S`` every batch is padded: its lengths are spread over [(1 - S) T, T] and
the encoder reads them (``--execution`` dense or packed, as ``encoder.execution``); tokens
per second then count real tokens only.

    python -m nlpseq.study.bench_cells                                  # CPU, 1 x 256, T = 64
    python -m nlpseq.study.bench_cells --hidden 512 --layers 2 --device cuda --json cells.json
    python -m nlpseq.study.bench_cells --seq 256 --spread 0.2 --execution packed
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from nlpseq.encoders import RecurrentEncoder, count_parameters, matched_hidden_size

CELLS = ("rnn", "gru", "lstm")
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def flops_per_token(cell: str, input_size: int, hidden: int, layers: int) -> int:
    """Forward multiply-adds x 2 of the gate products, per token (elementwise work left out)."""
    total, size = 0, input_size
    for _ in range(layers):
        total += 2 * GATES[cell] * hidden * (size + hidden)
        size = hidden
    return total


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(cell: str, hidden: int, args, device: torch.device) -> dict:
    torch.manual_seed(0)
    encoder = RecurrentEncoder(cell, args.input, hidden, num_layers=args.layers,
                               execution=args.execution).to(device)
    head = torch.nn.Linear(hidden, 1).to(device)
    optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=1e-3)
    inputs = torch.randn(args.batch, args.seq, args.input, device=device)
    targets = torch.randn(args.batch, args.seq, 1, device=device)
    lengths = None  # unpadded: no lengths to read
    if args.spread > 0:
        shortest = max(1, round((1 - args.spread) * args.seq))
        lengths = torch.linspace(shortest, args.seq, args.batch).round().long().to(device)
    tokens = args.batch * args.seq if lengths is None else int(lengths.sum())

    def train_step() -> None:
        loss = torch.nn.functional.mse_loss(head(encoder(inputs, lengths).outputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    saved = saved_for_backward_mib(lambda: torch.nn.functional.mse_loss(
        head(encoder(inputs, lengths).outputs), targets))
    optimizer.zero_grad(set_to_none=True)
    train_step()  # warm-up (allocations, kernels)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    train_rates, infer_rates = [], []
    for _ in range(args.rounds):
        started = time.perf_counter()
        for _ in range(args.steps):
            train_step()
        sync(device)
        train_rates.append(tokens * args.steps / (time.perf_counter() - started))
        with torch.no_grad():
            started = time.perf_counter()
            for _ in range(args.steps):
                encoder(inputs, lengths)
            sync(device)
        infer_rates.append(tokens * args.steps / (time.perf_counter() - started))
    memory = (round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
              if device.type == "cuda" else None)
    return {"cell": cell, "hidden": hidden, "params": count_parameters(encoder),
            "flops_per_token": flops_per_token(cell, args.input, hidden, args.layers),
            "train_tokens_per_s": statistics.median(train_rates),
            "infer_tokens_per_s": statistics.median(infer_rates),
            "saved_for_backward_mib": saved, "gpu_memory_mib": memory}


def saved_for_backward_mib(loss_fn) -> float:
    """MiB of the distinct tensors autograd keeps from the forward pass for the backward
    pass (activations, and the weights the products need): the training memory that grows
    with batch and length, the same on every device and free of allocator noise."""
    seen: dict[tuple, int] = {}

    def pack(tensor):
        key = (tensor.data_ptr(), tensor.numel(), tensor.dtype)
        seen[key] = tensor.numel() * tensor.element_size()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = loss_fn()
    loss.backward()
    return round(sum(seen.values()) / 2**20, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--spread", type=float, default=0.0,
                        help="> 0: padded batches, lengths spread over [(1 - spread) T, T]")
    parser.add_argument("--execution", choices=["auto", "dense", "packed"], default="auto")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = []
    for mode in ("equal width", "equal params"):
        for cell in CELLS:
            hidden = args.hidden if mode == "equal width" else matched_hidden_size(
                cell, "lstm", args.input, args.hidden, args.layers)
            rows.append({"mode": mode, **measure(cell, hidden, args, device)})
    lstm = {row["mode"]: row for row in rows if row["cell"] == "lstm"}
    print("| mode | cell | hidden | params | MFLOPs/token | vs LSTM | train tokens/s | vs LSTM "
          "| inference tokens/s | vs LSTM | saved for backward (MiB) | GPU memory (MiB) |")
    print("|" + "---|" * 12)
    for row in rows:
        ref = lstm[row["mode"]]
        print(f"| {row['mode']} | {row['cell']} | {row['hidden']} | {row['params']:,} | "
              f"{row['flops_per_token'] / 1e6:.2f} | "
              f"{row['flops_per_token'] / ref['flops_per_token']:.2f} | "
              f"{row['train_tokens_per_s']:,.0f} | "
              f"{row['train_tokens_per_s'] / ref['train_tokens_per_s']:.2f} | "
              f"{row['infer_tokens_per_s']:,.0f} | "
              f"{row['infer_tokens_per_s'] / ref['infer_tokens_per_s']:.2f} | "
              f"{row['saved_for_backward_mib']:.2f} | {row['gpu_memory_mib'] or '–'} |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "device": str(device),
                       "torch_threads": torch.get_num_threads(), "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
