"""Benchmark: how long a command takes to answer when there is no work to do.

Times ``--help``, ``--cfg job`` and a bad override (``encoder=lsmt``) through the console
entry point (``nlpseq.cli.entry``, which imports torch and Lightning only once there is
work) beside the same command through its work module (``python -m nlpseq.cli.train``,
which imports them first, as every command did before). Rounds alternate which goes
first; medians and the ratio are printed.

    python scripts/bench_startup.py --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CASES = {"--help": ["--help"], "--cfg job": ["--cfg", "job"], "bad override": ["encoder=lsmt"]}
ENTRY = [sys.executable, "-c", "import sys; from nlpseq.cli.entry import train; "
         "sys.argv[0] = 'nlpseq-train'; train()"]
WORK_MODULE = [sys.executable, "-m", "nlpseq.cli.train"]


def seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, check=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print("| nlpseq-train ... | entry point (s) | work module first (s) | ratio |")
    print("|---|---|---|---|")
    for name, arguments in CASES.items():
        times: dict[str, list[float]] = {"entry": [], "module": []}
        for round_ in range(args.rounds):
            order = [("entry", ENTRY), ("module", WORK_MODULE)]
            for label, command in order if round_ % 2 == 0 else order[::-1]:
                times[label].append(seconds([*command, *arguments]))
        entry, module = (statistics.median(times[key]) for key in ("entry", "module"))
        print(f"| {name} | {entry:.2f} | {module:.2f} | {module / entry:.1f}x |")


if __name__ == "__main__":
    main()
