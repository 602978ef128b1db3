"""Run several nlpseq commands, each in its own forked process, after importing the CLI once.

Each command costs about 8 s of imports (Lightning, torch, datasets) on a 2-core CPU
before it can even reject a misspelt key. The error tests run a dozen commands; as forks
of one process that has imported the CLI modules (and run nothing else) each is still a
fresh process with its own argv, stdout, stderr and exit status, as from the shell.

Reads a JSON list of ``[command, *args]`` on stdin; writes a JSON list of
``{"returncode", "stdout", "stderr"}`` on stdout. POSIX only (``os.fork``).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import traceback

COMMANDS = ("train", "evaluate", "predict", "export")


def exit_status(exit_: SystemExit) -> int:
    """The status Python itself gives ``sys.exit(code)``: None is 0, a message is 1."""
    if exit_.code is None or isinstance(exit_.code, int):
        return exit_.code or 0
    print(exit_.code, file=sys.stderr)
    return 1


def run_in_child(command: str, args: list[str]) -> int:
    sys.argv = [f"nlpseq-{command}", *args]
    try:
        importlib.import_module(f"nlpseq.cli.{command}").main()
    except SystemExit as exit_:
        return exit_status(exit_)
    except BaseException:  # what Python prints for an uncaught exception
        traceback.print_exc()
        return 1
    return 0


def run_forked(command: str, args: list[str]) -> dict:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:  # the child: its stdout and stderr go to the two files
            os.dup2(out.fileno(), 1)
            os.dup2(err.fileno(), 2)
            status = run_in_child(command, args)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)
        _, wait_status = os.waitpid(pid, 0)
        out.seek(0)
        err.seek(0)
        return {"returncode": os.waitstatus_to_exitcode(wait_status),
                "stdout": out.read().decode(errors="replace"),
                "stderr": err.read().decode(errors="replace")}


def main() -> None:
    cases = json.load(sys.stdin)
    for command in COMMANDS:
        importlib.import_module(f"nlpseq.cli.{command}")
    results = [run_forked(command, args) for command, *args in cases]
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
