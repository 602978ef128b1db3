"""Benchmark: nlpseq-serve under load on loopback, with batching on and off.

Starts ``nlpseq-serve ckpt_path=CKPT`` for each setting (alternating, ``--rounds`` each),
runs ``--clients`` concurrent clients that each POST one text at a time to /predict for
``--seconds``, and prints requests/s, p50/p99 latency and errors (medians over rounds).

    python scripts/bench_serve.py --ckpt outputs/sst2_run --clients 64 --seconds 30
    python scripts/bench_serve.py --ckpt outputs/multi30k_run --input test.de
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

TEXTS = ["a gripping film", "dull and lifeless", "the acting is superb but the plot is thin",
         "one of the best films of the year", "I wanted my two hours back"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(ckpt: str, port: int, batching: bool, max_wait_ms: float
                 ) -> subprocess.Popen:
    command = [str(Path(sys.executable).with_name("nlpseq-serve")), f"ckpt_path={ckpt}",
               f"port={port}", f"batching={str(batching).lower()}",
               f"max_wait_ms={max_wait_ms}", "accelerator=cpu"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.3)
    server.kill()
    raise SystemExit(f"the server did not start: {server.stderr.read().decode()[-2000:]}")


async def load(port: int, clients: int, seconds: float, texts: list[str] = TEXTS) -> dict:
    latencies, errors = [], 0
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits,
                                 timeout=60) as client:
        async def one_client(number: int) -> None:
            nonlocal errors
            sent = number
            while time.monotonic() < stop:
                started = time.perf_counter()
                try:
                    answer = await client.post("/predict",
                                               json={"texts": [texts[sent % len(texts)]]})
                    ok = answer.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += not ok
                sent += 1
        began = time.monotonic()
        await asyncio.gather(*(one_client(i) for i in range(clients)))
        elapsed = time.monotonic() - began
    latencies.sort()
    return {"requests_per_s": len(latencies) / elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
            "errors": errors, "requests": len(latencies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, help="a run directory or .ckpt file")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--input", help="texts to send, one a line (default: five film reviews)")
    parser.add_argument("--max-wait-ms", type=float, default=0.0,
                        help="how long a batch waits for more requests (the server's option)")
    args = parser.parse_args()
    texts = (Path(args.input).read_text(encoding="utf-8").splitlines()[:1000] if args.input
             else TEXTS)

    results: dict[bool, list[dict]] = {True: [], False: []}
    for number in range(args.rounds):
        for batching in (True, False) if number % 2 == 0 else (False, True):
            port = free_port()
            server = start_server(args.ckpt, port, batching, args.max_wait_ms)
            try:
                asyncio.run(load(port, 4, 2))  # warm-up
                results[batching].append(asyncio.run(load(port, args.clients, args.seconds,
                                                          texts)))
            finally:
                server.terminate()
                server.wait(timeout=30)
    print(f"{args.clients} clients, {args.seconds:.0f} s, max_wait_ms={args.max_wait_ms}, "
          f"medians of {args.rounds} round(s)\n")
    print("| batching | requests/s | p50 ms | p99 ms | errors | requests |")
    print("|---|---|---|---|---|---|")
    for batching in (True, False):
        rows = results[batching]
        median = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
        print(f"| {'on' if batching else 'off'} | {median['requests_per_s']:.1f} | "
              f"{median['p50_ms']:.1f} | {median['p99_ms']:.1f} | {median['errors']:.0f} | "
              f"{median['requests']:.0f} |")


if __name__ == "__main__":
    main()
