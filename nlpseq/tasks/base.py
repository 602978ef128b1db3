"""What every nlpseq task shares: optimizer and schedule wiring, checkpoint extras, and
cheap per-step logging."""

from __future__ import annotations

from collections.abc import Callable

import pytorch_lightning as pl
import torch
from torch import Tensor

from nlpseq.tasks.rng import rng_state, set_rng_state


class RecurrentTask(pl.LightningModule):
    """Base LightningModule of the task heads.

    Args:
        optimizer: a Hydra partial ``params -> Optimizer`` from ``conf/optimizer``.
        scheduler: a partial ``(optimizer, total_steps) -> lr_scheduler dict`` from
            ``conf/scheduler``, or None for a constant learning rate.
    """

    task_name = ""  # set by each subclass; stored in checkpoints and checked on loading

    def __init__(
        self,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., dict] | None = None,
    ) -> None:
        super().__init__()
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.checkpoint_extras: dict = {}
        self._resumed_rng: dict | None = None  # generator state of a resumed checkpoint

    def __setattr__(self, name: str, value) -> None:
        # Lightning records the hook it is in (``_current_fx_name``) around every hook call,
        # about 45 times a training step. nn.Module.__setattr__ first looks the name up among
        # parameters, buffers and submodules, which this plain string never is. Skipping
        # that saved about 0.15 ms a step (tiny model, 2-core CPU, bench_train_step.py).
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @classmethod
    def check_config(cls, cfg) -> None:
        """Refuse a config this task cannot train, before any data is read (override)."""

    def check_data(self, data_cfg) -> None:
        """Refuse evaluation data this trained model cannot read (override)."""

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        total_steps = int(self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer,
                "lr_scheduler": self.scheduler_factory(optimizer, total_steps=total_steps)}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["nlpseq"] = {"task": self.task_name, **self.checkpoint_extras}
        checkpoint["nlpseq_rng"] = rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Keep the saved generator state for ``on_train_start``: the sanity-check
        validation that runs first when training resumes draws from the generators too."""
        self._resumed_rng = checkpoint.get("nlpseq_rng")

    def on_train_start(self) -> None:
        if self._resumed_rng is not None:
            set_rng_state(self._resumed_rng)
            self._resumed_rng = None

    def log_train(self, name: str, value: Tensor, batch_size: int | Tensor,
                  prog_bar: bool = True) -> None:
        """Log a training-step value, but only on the steps Lightning writes to the loggers.

        Lightning keeps step metrics only every ``log_every_n_steps``; a ``self.log`` call
        on the other steps still costs about a millisecond, which is 15 % of a small
        model's training step on a GPU (measured with scripts/bench_train_step.py). A tensor
        ``batch_size`` is read (a GPU sync) only on the steps that are logged.
        """
        trainer = self._trainer
        if trainer is None:  # a step called by hand (tests): nothing to log to
            return
        every = max(1, trainer.log_every_n_steps)
        if (trainer.global_step + 1) % every and not trainer.should_stop:
            return
        self.log(name, value, prog_bar=prog_bar, batch_size=int(batch_size))
