"""A fork server for nlpseq commands: import the CLI once, then run each command in a fork.

Each command costs about 8 s of imports (Lightning, torch, datasets) on a 2-core CPU
before it can even reject a misspelt key, and the integration tests run about a hundred
commands. Forked from one process that has imported the CLI modules (and run nothing
else), each command is still a fresh process with its own argv, standard input, stdout,
stderr and exit status, as from the shell.

Protocol: one JSON request a line, ``{"argv": [command, *args], "stdin": text or null}``,
on this process's standard input; one JSON line ``{"returncode", "stdout", "stderr"}``
answers each, in order, on its standard output. A command never sees the request pipe:
its standard input is the request's text, or empty. POSIX only (``os.fork``).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import traceback

PRELOADED = ("train", "evaluate", "predict", "export", "compare", "inspect_cells")


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


def run_forked(argv: list[str], stdin: str | None) -> dict:
    """Run one command in a child process whose fds 0, 1 and 2 are temporary files."""
    command, *args = argv
    with (tempfile.TemporaryFile() as given, tempfile.TemporaryFile() as out,
          tempfile.TemporaryFile() as err):
        given.write((stdin or "").encode())
        given.seek(0)
        pid = os.fork()
        if pid == 0:
            os.dup2(given.fileno(), 0)
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
    # The requests and answers move to fds of their own, so that no command can read a
    # request or write into an answer; fds 0 and 1 become empty input and a sink.
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    with open(os.devnull, "rb") as empty, open(os.devnull, "wb") as sink:
        os.dup2(empty.fileno(), 0)
        os.dup2(sink.fileno(), 1)
    sys.path[0] = os.getcwd()  # as ``python -m``: the working directory, not this folder
    for command in PRELOADED:
        importlib.import_module(f"nlpseq.cli.{command}")
    for line in requests:
        request = json.loads(line)
        answers.write(json.dumps(run_forked(request["argv"], request["stdin"])) + "\n")
        answers.flush()


if __name__ == "__main__":
    main()
