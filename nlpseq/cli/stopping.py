"""How a command ends when it is told to stop: SIGTERM (what a scheduler such as SLURM
sends before it kills or requeues a job) or Ctrl-C (SIGINT).

While training, Lightning handles SIGTERM: it finishes the current batch and raises its
``SIGTERMException``; ``stop_requests_to_lightning`` makes a first Ctrl-C ask for the same
stop (a second one stops at once). ``LastCheckpoint`` then writes ``checkpoints/last.ckpt``
with the state at that step, the training loader's place in the epoch included, and
``resume=true`` continues from it exactly as a run that never stopped. ``training_stopped``
turns Lightning's exit into ``RunStopped``: one line that says where the run stopped, what
last.ckpt holds and the command that continues it, and exit status 143 (SIGTERM) or 130
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

    with _signal_handler(signal.SIGTERM, stop):
        yield


class StopRequest:
    """Whether Ctrl-C (rather than SIGTERM) asked training to stop."""

    ctrl_c = False


@contextmanager
def stop_requests_to_lightning() -> Iterator[StopRequest]:
    """While Lightning trains, SIGTERM is its own to handle (it also calls the handler it
    finds already set, and ``sigterm_stops_run``'s would stop in the middle of a batch).

    A first Ctrl-C sends this process SIGTERM: training stops after the current batch and
    its state is saved, as at a scheduler's SIGTERM. A second Ctrl-C, or one while
    Lightning is not listening for SIGTERM, stops at once (``KeyboardInterrupt``), and
    last.ckpt keeps what it held.
    """
    request = StopRequest()

    def ctrl_c(signum, frame) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, signal.SIG_IGN, None):
            raise KeyboardInterrupt
        request.ctrl_c = True
        signal.raise_signal(signal.SIGTERM)

    with _signal_handler(signal.SIGTERM, signal.SIG_DFL), _signal_handler(signal.SIGINT, ctrl_c):
        yield request


@contextmanager
def _signal_handler(signum: signal.Signals, handler) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only it takes signals
        yield
        return
    previous = signal.signal(signum, handler)
    try:
        yield
    finally:
        signal.signal(signum, previous)


def training_stopped(trainer, ctrl_c: bool, last_saved: tuple[int, int] | None,
                     last_path: Path | None, continue_command: str) -> RunStopped:
    """The ``RunStopped`` of a training run that Lightning stopped at SIGTERM or Ctrl-C.

    Args:
        ctrl_c: Ctrl-C asked for the stop (else SIGTERM).
        last_saved: (epoch, step) of the last.ckpt this run wrote, None if it wrote none.
        last_path: where last.ckpt is (None without a last-checkpoint callback).
        continue_command: the command that resumes this run in place.
    """
    cause = "Ctrl-C" if ctrl_c else "SIGTERM"
    where = f"training stopped by {cause} at epoch {trainer.current_epoch}, step " \
            f"{trainer.global_step}"
    if last_path is not None and last_saved is not None:
        state = f"{last_path} holds the state at epoch {last_saved[0]}, step " \
                f"{last_saved[1]}; continue with: {continue_command}"
    elif last_path is not None and last_path.is_file():
        state = f"{last_path} holds the state this run resumed from; continue with: " \
                f"{continue_command}"
    else:
        state = "no checkpoint was written yet (no step had finished); run the command again"
    return RunStopped(f"{where}; {state}", SIGINT_STATUS if ctrl_c else SIGTERM_STATUS)


def continue_command(command: str, overrides: list[str], run_dir: Path) -> str:
    """``nlpseq-train <overrides> hydra.run.dir=RUN resume=true``: the run's own overrides,
    less those that pick a checkpoint, quoted for a POSIX shell."""
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in ("resume",
                                                                           "ckpt_path")]
    return " ".join([command, *map(shlex.quote, kept), shlex.quote(f"hydra.run.dir={run_dir}"),
                     "resume=true"])
