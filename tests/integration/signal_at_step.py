"""Run ``nlpseq-train`` and have the process send itself a signal once training has
finished a given step: the signal a scheduler (SIGTERM), a user (Ctrl-C) or the kernel
(SIGKILL) sends, but at a known point in the middle of an epoch, where one sent from
outside lands wherever the clock says.

    python signal_at_step.py SIGNAL STEP [nlpseq-train overrides ...]

The signal goes through the process's real handlers; the run's config is untouched, so a
run resumed with ``resume=true`` compares with one that never stopped.
"""

from __future__ import annotations

import os
import signal
import sys

import pytorch_lightning as pl

from nlpseq.cli import train


class SignalAtStep(pl.Callback):
    def __init__(self, signum: signal.Signals, step: int) -> None:
        self.signum, self.step = signum, step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


def main() -> None:
    name, step, *overrides = sys.argv[1:]
    build_trainer = train.build_trainer

    def with_signal(cfg):
        trainer, *measures = build_trainer(cfg)
        trainer.callbacks.append(SignalAtStep(signal.Signals[name], int(step)))
        return (trainer, *measures)

    train.build_trainer = with_signal
    sys.argv = ["nlpseq-train", *overrides]
    train.main()


if __name__ == "__main__":
    main()
