"""A training loader that can stop part-way through an epoch and go on from there.

A checkpoint written in the middle of an epoch (at SIGTERM, or at a validation with
``trainer.val_check_interval`` < 1) holds where the training loader stood: the epoch and
how many batches the training loop had taken (``ResumableLoader.state_dict``). A run
resumed from it leaves those batches out by their indices (``ResumableOrder.skip``), so
nothing is loaded or collated twice, and goes on with the batch a run that never stopped
would train on next.

Lightning stores a stateful training loader's state in its loop state too, but puts it
back only into a loader it builds after restoring the checkpoint; a learning-rate schedule
sized by ``trainer.estimated_stepping_batches`` builds the loader before. So the
DataModule saves and restores the position itself (``SplitDataModule.state_dict``).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

from torch.utils.data import DataLoader, SequentialSampler

from nlpseq.errors import NlpseqError


class ResumableOrder:
    """What a sampler needs to resume an epoch: the ``epoch`` Lightning sets, and ``skip``,
    how many items (batches) of its next pass to leave out. A pass takes ``skip`` when it
    starts and sets it back to 0: only the resumed pass is shortened. Subclasses give the
    whole pass of the current epoch with ``items()``."""

    epoch = 0
    skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def items(self) -> Iterator:
        raise NotImplementedError

    def __iter__(self) -> Iterator:
        skip, self.skip = self.skip, 0
        return islice(self.items(), skip, None)


class InOrder(ResumableOrder, SequentialSampler):
    """Items 0 .. n-1, the same every epoch (the blocks of a token stream). A
    ``SequentialSampler``, so that Lightning's ``overfit_batches`` finds nothing to
    change."""

    def items(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))


class ResumableLoader(DataLoader):
    """A DataLoader whose position in the epoch can be saved and restored.

    Its sampler (``batch_sampler``, or ``sampler`` when ``batch_size=None``) must be a
    ``ResumableOrder``. The position counts the batches this loader handed to the training
    loop, not the indices its sampler gave out: DataLoader workers read indices ahead of
    the loop. A pass starts (and workers start reading) when its first batch is asked for:
    Lightning asks for the first pass's iterator before it sets the epoch.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.position = {"epoch": 0, "batches": 0}  # where the current pass stands
        self._resume: dict | None = None  # a saved position the next pass goes on from

    @property
    def order(self) -> ResumableOrder:
        return self.batch_sampler if self.batch_sampler is not None else self.sampler

    def state_dict(self) -> dict:
        return dict(self._resume or self.position)  # restored, not yet drawn from: the same

    def load_state_dict(self, state: dict) -> None:
        self._resume = checked_position(state)

    def __iter__(self) -> Iterator:
        return self._pass()

    def _pass(self) -> Iterator:
        """The batches of one pass. A restored position applies only to the epoch it was
        saved in: a checkpoint written after an epoch's last batch starts the next epoch
        whole (``max_steps`` makes Lightning restore the loader of such a checkpoint)."""
        resume, self._resume = self._resume, None
        order = self.order
        if resume is not None and resume["epoch"] == order.epoch:
            order.skip = resume["batches"]
        self.position = {"epoch": order.epoch, "batches": order.skip}
        for batch in super().__iter__():
            self.position["batches"] += 1
            yield batch


def checked_position(state) -> dict:
    """A loader position read from a checkpoint: ``{"epoch": int, "batches": int}``."""
    if not (isinstance(state, dict) and all(
            type(state.get(key)) is int and state[key] >= 0 for key in ("epoch", "batches"))):
        raise NlpseqError(f"The checkpoint's training-loader state is not "
                          f"{{'epoch': int >= 0, 'batches': int >= 0}}; got {state!r:.100}")
    return {"epoch": state["epoch"], "batches": state["batches"]}
