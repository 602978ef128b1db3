"""How a command ends when it is told to stop: SIGTERM (what a scheduler such as SLURM
sends before it kills or requeues a job) or Ctrl-C (SIGINT).

While training, Lightning handles both: at SIGTERM it finishes the current batch and
raises its ``SIGTERMException``; at Ctrl-C it exits with status 1. ``checkpoints/last.ckpt``
then holds the state of the last validation (``LastCheckpoint`` writes it at every one), and
``resume=true`` continues from it exactly as a run that never stopped: the state of the
interrupted epoch is not saved, because the batches of an epoch cannot be resumed part-way.
``training_stopped`` turns Lightning's exit into ``RunStopped``: one line that says where
the run stopped and the command that continues it, and exit status 143 (SIGTERM) or 130
(Ctrl-C). Outside training, ``sigterm_stops_run`` makes SIGTERM raise ``RunStopped`` at once.
"""

from __future__ import annotations

import shlex
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SIGTERM_STATUS, SIGINT_STATUS = 128 + signal.SIGTERM, 128 + signal.SIGINT


class RunStopped(BaseException):
    """A command stopped by a signal. Not an ``Exception``: a sweep stops with it, instead of
    recording a failed job and starting the next one."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@contextmanager
def sigterm_stops_run() -> Iterator[None]:
    """SIGTERM raises ``RunStopped`` (the default would end the process without a word)."""
    def stop(signum, frame) -> None:
        raise RunStopped("stopped by SIGTERM", SIGTERM_STATUS)

    with _sigterm_handler(stop):
        yield


@contextmanager
def sigterm_to_lightning() -> Iterator[None]:
    """While Lightning trains, SIGTERM is its own to handle. Lightning also calls the handler
    it finds already set, and ``sigterm_stops_run``'s would stop in the middle of a batch."""
    with _sigterm_handler(signal.SIG_DFL):
        yield


@contextmanager
def _sigterm_handler(handler) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only it takes signals
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def training_stopped(trainer, last_saved: tuple[int, int] | None, last_path: Path | None,
                     continue_command: str) -> RunStopped:
    """The ``RunStopped`` of a training run that Lightning stopped at SIGTERM or Ctrl-C.

    Args:
        last_saved: (epoch, step) of the last.ckpt this run wrote, None if it wrote none.
        last_path: where last.ckpt is (None without a last-checkpoint callback).
        continue_command: the command that resumes this run in place.
    """
    sigterm = trainer.received_sigterm
    cause = "SIGTERM" if sigterm else "Ctrl-C"
    where = f"training stopped by {cause} at epoch {trainer.current_epoch}, step " \
            f"{trainer.global_step}"
    if last_path is not None and last_saved is not None:
        state = f"{last_path} holds the last validation (epoch {last_saved[0]}, step " \
                f"{last_saved[1]}); continue with: {continue_command}"
    elif last_path is not None and last_path.is_file():
        state = f"{last_path} holds the state this run resumed from; continue with: " \
                f"{continue_command}"
    else:
        state = "no checkpoint was written yet (no validation had finished); run the " \
                "command again"
    return RunStopped(f"{where}; {state}", SIGTERM_STATUS if sigterm else SIGINT_STATUS)


def continue_command(command: str, overrides: list[str], run_dir: Path) -> str:
    """``nlpseq-train <overrides> hydra.run.dir=RUN resume=true``: the run's own overrides,
    less those that pick a checkpoint, quoted for a POSIX shell."""
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in ("resume",
                                                                           "ckpt_path")]
    return " ".join([command, *map(shlex.quote, kept), shlex.quote(f"hydra.run.dir={run_dir}"),
                     "resume=true"])
